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

  // Character counts: a text field's limit stops being a silent cut (the
  // browser truncates a long paste at maxlength); the rep sees the count and
  // how far over it is, and the server still refuses too long an answer.
  function characterCount(field) {
    var limit = Number(field.getAttribute("maxlength"));
    if (!field.id || !(limit > 0)) { return; }
    field.removeAttribute("maxlength");
    var counter = document.createElement("p");
    counter.id = field.id + "-count";
    counter.className = "char-count";
    var status = document.createElement("span");  // spoken only when the field crosses its limit
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    field.insertAdjacentElement("afterend", counter);
    counter.insertAdjacentElement("afterend", status);
    var hint = field.parentNode.querySelector(".length-hint");  // the count says it now
    if (hint) { hint.hidden = true; }
    var described = field.getAttribute("aria-describedby");
    field.setAttribute("aria-describedby", (described ? described + " " : "") + counter.id);
    var wasOver = false;
    function update() {
      var length = field.value.length;
      var over = length > limit;
      counter.textContent = length + " of " + limit + " characters" + (over ? ": " + (length - limit) + " too many" : "");
      counter.classList.toggle("over", over);
      if (over !== wasOver) {
        status.textContent = over ? "Too long: " + (length - limit) + " characters over the limit of " + limit + "."
                                  : "Within the limit of " + limit + " characters.";
        wasOver = over;
      }
    }
    field.addEventListener("input", update);
    update();
  }
  Array.prototype.forEach.call(form.querySelectorAll("textarea[maxlength], input[type=text][maxlength]"), characterCount);
})();
