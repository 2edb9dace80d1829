/*
 * The reply templates picker of a request's reply box.
 *
 * Markup (server-rendered, hidden until this script shows it; every word is translated there):
 *   <button data-template-picker-open="PICKER_ID" hidden>
 *   <div id="PICKER_ID" data-search-url data-render-url (with {id}) data-target (textarea id)
 *        data-csrf data-asks-label>
 *     input[type=search].template-search, ul.template-choices, .template-none,
 *     form.template-prompts > .template-chosen, .template-prompt-fields, .field-error,
 *     button[type=submit], button.template-cancel
 *
 * Searching asks the server (name and text, the agent's language first); choosing a template
 * asks for its prompts, then the server renders it for the request, and the text goes into the
 * reply box, where it stays editable and the live counter counts it. A value the template
 * lacks is shown as the server words it. User text is only ever set with textContent.
 */
(function () {
  "use strict";

  function debounce(fn, wait) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, wait);
    };
  }

  function insertText(textarea, text) {
    if (!textarea.value.trim()) {
      textarea.value = text;
    } else {
      var start = textarea.selectionStart;
      var end = textarea.selectionEnd;
      textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
      textarea.selectionStart = textarea.selectionEnd = start + text.length;
    }
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    textarea.focus();
  }

  function attach(picker, opener) {
    var data = picker.dataset;
    var textarea = document.getElementById(data.target);
    var search = picker.querySelector(".template-search");
    var list = picker.querySelector(".template-choices");
    var none = picker.querySelector(".template-none");
    var form = picker.querySelector(".template-prompts");
    var chosenLabel = form.querySelector(".template-chosen");
    var fields = form.querySelector(".template-prompt-fields");
    var error = form.querySelector(".field-error");
    var cancel = form.querySelector(".template-cancel");
    var chosen = null;
    var latest = 0;

    function showError(message) {
      error.textContent = message;
      error.hidden = !message;
    }

    function close() {
      picker.hidden = true;
      opener.setAttribute("aria-expanded", "false");
      form.hidden = true;
      chosen = null;
    }

    function load() {
      var asked = ++latest;
      var url = data.searchUrl + "?q=" + encodeURIComponent(search.value.trim());
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.json();
        })
        .then(function (body) {
          if (asked === latest) {
            showChoices(body.templates || []);
          }
        });
    }

    function showChoices(templates) {
      list.replaceChildren();
      none.hidden = templates.length > 0;
      templates.forEach(function (template) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "template-choice";
        button.setAttribute("data-template-id", template.id);
        var name = document.createElement("strong");
        name.textContent = template.name;
        var language = document.createElement("span");
        language.className = "status";
        language.textContent = template.language;
        var text = document.createElement("span");
        text.className = "choice-text";
        text.textContent = template.body;
        button.append(name, " ", language, text);
        button.addEventListener("click", function () {
          choose(template);
        });
        item.appendChild(button);
        list.appendChild(item);
      });
    }

    function choose(template) {
      chosen = template;
      showError("");
      fields.replaceChildren();
      if (!template.prompts.length) {
        render();
        return;
      }
      chosenLabel.textContent = template.name;
      template.prompts.forEach(function (question, index) {
        var id = picker.id + "-prompt-" + index;
        var label = document.createElement("label");
        label.htmlFor = id;
        label.textContent = question;
        var input = document.createElement("input");
        input.type = "text";
        input.id = id;
        input.setAttribute("aria-required", "true");
        input.setAttribute("data-prompt", question);
        fields.append(label, input);
      });
      form.hidden = false;
      fields.querySelector("input").focus();
    }

    function render() {
      var prompts = {};
      fields.querySelectorAll("input[data-prompt]").forEach(function (input) {
        prompts[input.getAttribute("data-prompt")] = input.value;
        input.removeAttribute("aria-invalid");
      });
      fetch(data.renderUrl.replace("{id}", encodeURIComponent(chosen.id)), {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/json",
          "X-CSRF-Token": data.csrf,
        },
        body: JSON.stringify({ prompts: prompts }),
      })
        .then(function (response) {
          return response.json().then(function (body) {
            return { ok: response.ok, body: body };
          });
        })
        .then(function (answer) {
          if (answer.ok) {
            close();
            insertText(textarea, answer.body.text);
            return;
          }
          var problem = answer.body.error || {};
          if (form.hidden) {
            chosenLabel.textContent = chosen.name;
            form.hidden = false;
          }
          showError(problem.message || data.failedLabel || "");
          var variable = problem.variable || "";
          if (variable.indexOf("prompt:") === 0) {
            var question = variable.slice("prompt:".length);
            fields.querySelectorAll("input[data-prompt]").forEach(function (input) {
              if (input.getAttribute("data-prompt") === question) {
                input.setAttribute("aria-invalid", "true");
                input.focus();
              }
            });
          }
        });
    }

    opener.hidden = false;
    opener.setAttribute("aria-expanded", "false");
    opener.addEventListener("click", function () {
      if (!picker.hidden) {
        close();
        return;
      }
      picker.hidden = false;
      opener.setAttribute("aria-expanded", "true");
      search.focus();
      load();
    });
    search.addEventListener("input", debounce(load, 150));
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        var first = list.querySelector("button");
        if (first) {
          first.click();
        }
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      render();
    });
    cancel.addEventListener("click", close);
  }

  function start() {
    document.querySelectorAll("[data-template-picker-open]").forEach(function (opener) {
      var picker = document.getElementById(opener.getAttribute("data-template-picker-open"));
      if (picker) {
        attach(picker, opener);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
