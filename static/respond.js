// Show-if on the rep form: hide and show questions as answers change.
// The server evaluates the same rules on submit; this is only a convenience.
(function () {
  "use strict";
  var form = document.querySelector("form.rep-form");
  if (!form) { return; }
  var conditional = Array.prototype.slice.call(form.querySelectorAll("[data-show-if-key]"));

  function answerOf(key) {
    var inputs = form.querySelectorAll('[name="' + key + '"]');
    var values = [];
    Array.prototype.forEach.call(inputs, function (input) {
      if ((input.type === "radio" || input.type === "checkbox")) {
        if (input.checked) { values.push(input.value); }
      } else if (input.value !== "") {
        values.push(input.value);
      }
    });
    return values;
  }

  function isShown(key) {
    var block = document.getElementById("q-" + key);
    return !block || !block.classList.contains("is-hidden");
  }

  function refresh() {
    conditional.forEach(function (block) {
      var key = block.getAttribute("data-show-if-key");
      var expected = block.getAttribute("data-show-if-value");
      var values = answerOf(key);
      var numeric = values.map(function (v) { return String(Number(v)); });
      var show = isShown(key) && (values.indexOf(expected) !== -1 || numeric.indexOf(expected) !== -1);
      block.classList.toggle("is-hidden", !show);
      Array.prototype.forEach.call(block.querySelectorAll("input, textarea, select"), function (input) {
        input.disabled = !show;
      });
    });
  }

  form.addEventListener("change", refresh);
  form.addEventListener("input", refresh);
  refresh();
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
