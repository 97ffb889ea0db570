// A table that scrolls sideways (on a phone, static/canary.css lets a wide
// table scroll inside itself) must be reachable by keyboard to be scrolled
// by it: give each such table a tab stop, named by its caption or heading.
(function () {
  "use strict";
  function mark() {
    Array.prototype.forEach.call(document.querySelectorAll("main table"), function (table) {
      var scrolls = table.scrollWidth > table.clientWidth + 1;
      if (scrolls && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        table.setAttribute("data-scrolls", "");
      } else if (!scrolls && table.hasAttribute("data-scrolls")) {
        table.removeAttribute("tabindex");
        table.removeAttribute("data-scrolls");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
}());
