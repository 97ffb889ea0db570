// The staff home page keeps its open rounds' counts current without a reload
// (progressive enhancement: the page is complete without this file). Every
// refresh-seconds it reads /home/live, the same counts the page was rendered
// with, and updates the figures of rounds that show them.
(function () {
  "use strict";
  var section = document.querySelector("[data-live-url]");
  if (!section || !window.fetch) { return; }
  var seconds = parseInt(section.getAttribute("data-refresh-seconds"), 10);
  if (!(seconds > 0)) { return; }
  var status = section.querySelector("[data-live-status]");

  function show(round) {
    var panel = section.querySelector('[data-live-round="' + round.round_id + '"]');
    if (!panel || round.withheld || round.held) { return; }
    ["responded", "invited"].forEach(function (field) {
      var target = panel.querySelector('[data-field="' + field + '"]');
      if (target && round[field] !== null) { target.textContent = String(round[field]); }
    });
    var rate = panel.querySelector('[data-field="rate"]');
    if (rate && round.rate !== null) { rate.textContent = round.rate.toFixed(1) + " %"; }
  }

  function refresh() {
    fetch(section.getAttribute("data-live-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { if (!response.ok) { throw new Error(String(response.status)); } return response.json(); })
      .then(function (data) {
        data.rounds.forEach(show);
        if (status) { status.textContent = "Counts updated " + new Date().toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) + "."; }
      })
      .catch(function () { if (status) { status.textContent = "Counts could not be updated; reload the page to try again."; } });
  }
  window.setInterval(refresh, seconds * 1000);
}());
