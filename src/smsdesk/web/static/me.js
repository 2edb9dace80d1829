// My settings: a time zone not chosen yet is filled in from the browser, for the user to save.
(function () {
  "use strict";
  function start() {
    var select = document.getElementById("me-time-zone");
    if (!select || select.dataset.browserDefault !== "on") return;
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === zone; });
    if (!zone || !known) return;
    select.value = zone;
    var note = document.getElementById("time-zone-guess");
    if (note) note.hidden = false;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
