// Small progressive enhancements shared by every page; each page works without them.
(function () {
  "use strict";

  // Times are shown in the browser's time zone until the user chooses one in My settings.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\/-]{1,64}$/.test(zone) &&
        document.cookie.indexOf("smsdesk_tz=" + zone) < 0) {
      document.cookie = "smsdesk_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (error) {
    // No Intl: times stay in UTC.
  }

  function onReady(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  onReady(function () {
    // A language choice applies at once; the button stays for browsers without scripts.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var form = select.form;
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.hidden = true;
      }
      select.addEventListener("change", function () {
        form.submit();
      });
    });

    // Forms that delete or cancel ask first, in the page's language.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  });
})();
