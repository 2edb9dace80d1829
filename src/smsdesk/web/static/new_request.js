/*
 * The "New SMS conversation" form: a template is rendered for the number typed so far, so
 * {customer.name} and {customer.number} come from that number's customer.
 */
(function () {
  "use strict";

  function start() {
    var number = document.getElementById("new-number");
    var picker = document.getElementById("new-template-picker");
    if (!number || !picker) {
      return;
    }
    var base = picker.getAttribute("data-render-url");
    function follow() {
      var typed = number.value.trim();
      picker.setAttribute(
        "data-render-url",
        typed ? base + "?to=" + encodeURIComponent(typed) : base
      );
    }
    number.addEventListener("input", follow);
    follow();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
