// Designer conveniences; every one of them also works without JavaScript:
// - show only the settings of the chosen question type;
// - suggest a key from the question while the key field is untouched
//   (the server makes the same kind of suggestion when it is left empty);
// - drag questions to reorder them (the arrow buttons do the same).
(function () {
  "use strict";

  // -- Settings of the chosen type ------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll("form.question-form"), function (form) {
    var typeSelect = form.querySelector('select[name="question_type"]');
    if (!typeSelect) { return; }
    var sets = form.querySelectorAll("fieldset[data-types]");
    function showChosenType() {
      Array.prototype.forEach.call(sets, function (fieldset) {
        var types = fieldset.getAttribute("data-types").split(" ");
        fieldset.hidden = types.indexOf(typeSelect.value) === -1;
      });
    }
    typeSelect.addEventListener("change", showChosenType);
    showChosenType();

    // -- Key suggested from the prompt ---------------------------------------
    var key = form.querySelector('input[name="key"]:not([readonly])');
    var prompt = form.querySelector('[name="prompt"]');
    if (!key || !prompt) { return; }
    var stopWords = ("a an and any are as at be by did do does for from had has have how i if in is it its me of on " +
      "or our so that the their them there these this to was we were what when where which who why will with would " +
      "you your").split(" ");
    var touched = key.value !== "";
    key.addEventListener("input", function () { touched = key.value !== ""; });
    prompt.addEventListener("input", function () {
      if (touched) { return; }
      var words = (prompt.value.toLowerCase().match(/[a-z0-9]+/g) || []);
      var meaningful = words.filter(function (w) { return stopWords.indexOf(w) === -1; });
      var slug = (meaningful.length ? meaningful : words).slice(0, 4).join("_").slice(0, 40).replace(/_+$/, "");
      if (slug && !/^[a-z]/.test(slug)) { slug = "q_" + slug; }
      key.value = slug;
    });
  });

  // -- Drag to reorder -----------------------------------------------------------
  var list = document.querySelector("ol.designer-questions[data-reorder-form]");
  var reorderForm = list && document.getElementById(list.getAttribute("data-reorder-form"));
  if (!list || !reorderForm) { return; }
  var dragged = null;
  Array.prototype.forEach.call(list.children, function (item) {
    item.draggable = true;
    item.classList.add("draggable");
    item.addEventListener("dragstart", function (event) {
      dragged = item;
      item.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", item.getAttribute("data-key"));
    });
    item.addEventListener("dragend", function () {
      item.classList.remove("dragging");
      dragged = null;
    });
    item.addEventListener("dragover", function (event) {
      if (!dragged || dragged === item) { return; }
      event.preventDefault();
      var box = item.getBoundingClientRect();
      var after = event.clientY > box.top + box.height / 2;
      list.insertBefore(dragged, after ? item.nextSibling : item);
    });
    item.addEventListener("drop", function (event) {
      event.preventDefault();
      // The server checks the order (a question must stay below the one it
      // depends on) and says so when it refuses.
      Array.prototype.forEach.call(list.children, function (child) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = "order";
        input.value = child.getAttribute("data-key");
        reorderForm.appendChild(input);
      });
      reorderForm.submit();
    });
  });
})();
