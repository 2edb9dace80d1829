// The SMS configuration screen: show the chosen module's fields, and run Send test in place
// (the result and then each status change appear without leaving the page or losing input).
(function () {
  "use strict";

  var POLL_MS = 1000;
  var POLL_LIMIT = 600; // about ten minutes of following one test message

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function showModule(form, name) {
    form.querySelectorAll("fieldset[data-module]").forEach(function (set) {
      var chosen = set.getAttribute("data-module") === name;
      set.hidden = !chosen;
      set.disabled = !chosen;
    });
    document.querySelectorAll("#module-descriptions li").forEach(function (item) {
      item.hidden = item.getAttribute("data-module") !== name;
    });
    // A module with its own SMS endpoint field: the mailbox's is not shown beside it.
    var mailboxEndpoint = document.getElementById("mailbox-endpoint");
    if (mailboxEndpoint) {
      var own = (mailboxEndpoint.getAttribute("data-unless-modules") || "").split(" ");
      mailboxEndpoint.hidden = own.indexOf(name) >= 0;
    }
  }

  function clearLiveErrors(form) {
    form.querySelectorAll(".live-error").forEach(function (node) {
      node.remove();
    });
    form.querySelectorAll("[data-live-invalid]").forEach(function (node) {
      node.removeAttribute("aria-invalid");
      node.removeAttribute("data-live-invalid");
    });
  }

  function showFieldErrors(form, errors, box) {
    Object.keys(errors).forEach(function (name) {
      var holder = form.querySelector('[data-field="' + CSS.escape(name) + '"]');
      errors[name].forEach(function (message) {
        var line = document.createElement("p");
        line.className = "field-error live-error";
        line.textContent = message;
        if (holder && !holder.closest("fieldset[disabled]")) {
          holder.appendChild(line);
          var input = holder.querySelector("input:not([type=hidden]), select, textarea");
          if (input) {
            input.setAttribute("aria-invalid", "true");
            input.setAttribute("data-live-invalid", "");
          }
        } else {
          box.appendChild(line);
        }
      });
    });
  }

  function resultBlock(box, ok) {
    box.textContent = "";
    var block = document.createElement("div");
    block.className = "result " + (ok ? "ok" : "failed");
    box.appendChild(block);
    return block;
  }

  function line(block, text, attribute, value) {
    var p = document.createElement("p");
    p.textContent = text;
    if (attribute) {
      p.setAttribute(attribute, value);
    }
    block.appendChild(p);
    return p;
  }

  function follow(box, statusLine, messageId, csrf, rounds) {
    if (rounds > POLL_LIMIT) {
      return;
    }
    window.setTimeout(function () {
      fetch("/preferences/general/sms/test/" + encodeURIComponent(messageId), {
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (state) {
          if (!state) {
            return;
          }
          statusLine.textContent = fill(box.dataset.status, { status: state.status_label });
          statusLine.setAttribute("data-test-status", state.status);
          if (!state.final) {
            follow(box, statusLine, messageId, csrf, rounds + 1);
          }
        })
        .catch(function () {
          follow(box, statusLine, messageId, csrf, rounds + 1);
        });
    }, POLL_MS);
  }

  function sendTest(form, button) {
    var box = document.getElementById("test-result");
    var csrf = form.querySelector('input[name="csrf_token"]').value;
    clearLiveErrors(form);
    var pending = resultBlock(box, true);
    line(pending, box.dataset.sending, "data-test-outcome", "sending");
    button.disabled = true;
    fetch(button.getAttribute("formaction"), {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(function (result) {
        var block;
        if (result.outcome === "accepted" || result.outcome === "refused") {
          var accepted = result.outcome === "accepted";
          block = resultBlock(box, accepted);
          var message = result.message;
          if (accepted) {
            line(block, fill(box.dataset.accepted, { id: message.provider_message_id || "–" }),
              "data-test-outcome", "accepted");
          } else {
            // The provider's own words are quoted as theirs, after our sentence.
            var refusedLine = line(block, fill(box.dataset.refused, { error: "" }),
              "data-test-outcome", "refused");
            if (result.error_code) {
              var code = document.createElement("code");
              code.textContent = result.error_code;
              refusedLine.appendChild(code);
              refusedLine.appendChild(document.createTextNode(" "));
            }
            if (result.error_message) {
              var quoted = document.createElement("q");
              quoted.lang = "en";
              quoted.setAttribute("data-user-text", "");
              quoted.className = "provider-text";
              quoted.textContent = result.error_message;
              refusedLine.appendChild(quoted);
            }
          }
          var statusLine = line(block, fill(box.dataset.status, { status: message.status_label }),
            "data-test-status", message.status);
          var recipient = line(block, fill(box.dataset.sentTo, { number: message.recipient }) + " ",
            "data-test-recipient", "");
          var link = document.createElement("a");
          link.href = "/messages/" + encodeURIComponent(message.id);
          link.textContent = box.dataset.openMessage;
          link.setAttribute("data-test-message", "");
          recipient.appendChild(link);
          if (!message.final) {
            follow(box, statusLine, message.id, csrf, 0);
          }
        } else if (result.outcome === "not_ready") {
          block = resultBlock(box, false);
          line(block, box.dataset.notReady, "data-test-outcome", "not_ready");
        } else {
          block = resultBlock(box, false);
          line(block, box.dataset.invalid, "data-test-outcome", result.outcome);
          showFieldErrors(form, result.errors || {}, block);
        }
      })
      .catch(function (error) {
        var block = resultBlock(box, false);
        line(block, fill(box.dataset.failedRequest, { error: error.message }),
          "data-test-outcome", "error");
      })
      .finally(function () {
        button.disabled = false;
      });
  }

  function start() {
    var form = document.getElementById("sms-settings");
    if (!form) {
      return;
    }
    var module = form.querySelector('select[name="module"]');
    if (module) {
      module.addEventListener("change", function () {
        showModule(form, module.value);
      });
    }
    var button = document.getElementById("send-test");
    if (button && window.fetch) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        sendTest(form, button);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
