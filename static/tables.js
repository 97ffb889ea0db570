// Wide tables on a phone (static/canary.css lets them scroll inside
// themselves, never the page).
// - A list (one record per row, headed columns) becomes a stack of cards:
//   each cell is labelled by its column's heading, so nothing scrolls.
// - Any other table that still scrolls (a matrix such as the heatmap) gets a
//   tab stop so the keyboard can scroll it.
// Without JavaScript the tables simply scroll inside themselves.
(function () {
  "use strict";
  var phone = window.matchMedia("(max-width: 40rem)");
  var MATRICES = ".heatmap, .metric-table, .bars-table, .reminder-gains, .choice-history";

  function headings(table) {
    var row = table.tHead && table.tHead.rows[0];
    if (!row || table.matches(MATRICES)) { return null; }
    var labels = Array.prototype.map.call(row.cells, function (cell) { return cell.textContent.trim(); });
    var regular = Array.prototype.every.call(table.tBodies, function (body) {
      return Array.prototype.every.call(body.rows, function (tr) {
        return tr.cells.length === labels.length;  // no spanning cells: every cell has its heading
      });
    });
    return regular ? labels : null;
  }

  function asCards(table, labels, on) {
    table.classList.toggle("as-cards", on);
    // The cards keep what the table said: the roles CSS display changes would lose.
    if (on) { table.setAttribute("role", "table"); } else { table.removeAttribute("role"); }
    Array.prototype.forEach.call(table.rows, function (tr) {
      if (on) { tr.setAttribute("role", "row"); } else { tr.removeAttribute("role"); }
      Array.prototype.forEach.call(tr.cells, function (cell, index) {
        var header = cell.tagName === "TH";
        var inHead = tr.parentNode === table.tHead;
        if (on) {
          cell.setAttribute("role", inHead ? "columnheader" : (header ? "rowheader" : "cell"));
          if (!inHead && labels[index]) { cell.setAttribute("data-label", labels[index]); }
        } else {
          cell.removeAttribute("role");
          cell.removeAttribute("data-label");
        }
      });
    });
    Array.prototype.forEach.call(table.querySelectorAll("thead, tbody"), function (group) {
      if (on) { group.setAttribute("role", "rowgroup"); } else { group.removeAttribute("role"); }
    });
  }

  function layout() {
    Array.prototype.forEach.call(document.querySelectorAll("main table"), function (table) {
      var labels = headings(table);
      var cards = Boolean(labels) && phone.matches;
      if (labels && cards !== table.classList.contains("as-cards")) { asCards(table, labels, cards); }
      var scrolls = !cards && table.scrollWidth > table.clientWidth + 1;
      if (scrolls && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        table.setAttribute("data-scrolls", "");
      } else if (!scrolls && table.hasAttribute("data-scrolls")) {
        table.removeAttribute("tabindex");
        table.removeAttribute("data-scrolls");
      }
    });
  }
  layout();
  window.addEventListener("resize", layout);
}());
