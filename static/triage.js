// Keyboard triage for the inbox (progressive enhancement: every action is a
// plain form that works without this file). j/k move between comments,
// 1-3 link the focused comment to a suggested need, n focuses "New need",
// d dismisses. Keys typed into a field are left alone.
(function () {
  "use strict";
  var list = document.querySelector("[data-triage]");
  if (!list) { return; }
  var items = Array.prototype.slice.call(list.querySelectorAll("[data-triage-item]"));
  if (!items.length) { return; }
  var current = 0;
  function focus(index) {
    current = Math.max(0, Math.min(items.length - 1, index));
    items.forEach(function (item, i) { item.classList.toggle("triage-current", i === current); });
    items[current].focus();
  }
  function inField(target) {
    return target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || inField(event.target)) { return; }
    var item = items[current];
    var hit = null;
    if (event.key === "j") { focus(current + 1); event.preventDefault(); return; }
    if (event.key === "k") { focus(current - 1); event.preventDefault(); return; }
    if (/^[1-3]$/.test(event.key)) { hit = item.querySelector('[data-suggestion="' + event.key + '"]'); }
    if (event.key === "d") { hit = item.querySelector("[data-dismiss]"); }
    if (event.key === "n") {
      var field = item.querySelector("[data-new-need]");
      if (field) { field.focus(); event.preventDefault(); }
      return;
    }
    if (hit) { event.preventDefault(); hit.click(); }
  });
  document.querySelectorAll("[data-triage-item]").forEach(function (item, i) {
    item.addEventListener("focusin", function () { current = i; });
  });
  focus(0);
}());
