// A user without a time zone: send the browser's once, so times can be shown in it.
(function () {
  "use strict";
  var script = document.getElementById("time-zone-default");
  if (!script || !window.fetch) return;
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
  if (!zone) return;
  fetch("/me/time-zone", {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      "X-CSRF-Token": script.dataset.csrf || ""
    },
    body: "time_zone=" + encodeURIComponent(zone)
  }).catch(function () {});
})();
