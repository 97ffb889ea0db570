// A form sent back with errors shows an error summary at the top of the
// page (templates/_forms.html): move focus to it, so it is seen and read
// out first, on every page with one (the rep form, the staff forms).
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
}());
