// A mailing's page: while it sends, its figures are fetched again every few seconds and
// swapped in; when its status changes the page reloads, so its buttons fit the new status.
(function () {
  "use strict";
  var INTERVAL = 3000;

  function poll() {
    var part = document.getElementById("mailing-figures");
    var url = part && part.getAttribute("data-poll");
    if (!url) {
      return;
    }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) {
          if (html === null) {
            poll();
            return;
          }
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#mailing-figures");
          if (!fresh) {
            return;
          }
          if (fresh.getAttribute("data-status") !== part.getAttribute("data-status")) {
            window.location.reload();
            return;
          }
          part.replaceWith(fresh);
          poll();
        })
        .catch(function () { poll(); });
    }, INTERVAL);
  }

  poll();
})();
