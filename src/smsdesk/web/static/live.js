// Live updates: the parts of a page marked with data-live-topics (and data-live-keys) reload
// themselves when the server announces a change that concerns them. Changes come over
// Server-Sent Events (/live/events); when a stream cannot be kept open the page asks
// /live/poll every two seconds instead. A part is reloaded by fetching the page again and
// swapping in the element with the same id, so the server renders it exactly as on a reload.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var MIN_GAP_MS = 800; // between two reloads of the page's parts
  var STREAM_AGAIN_AFTER_POLLS = 30; // polling tries a stream again now and then
  var TOPICS = ["message", "conversation", "request", "refresh"];

  var script = document.currentScript;
  var cursor = script ? script.getAttribute("data-cursor") : null;

  function words(text) {
    return (text || "").split(",").map(function (w) { return w.trim(); }).filter(Boolean);
  }

  function liveParts() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-live-topics][id]"));
  }

  if (!liveParts().length || !window.fetch || !window.DOMParser) {
    return;
  }

  // What this page asks for: every part's topics, and keys unless a part wants them all.
  var topics = {};
  var keys = {};
  var everyKey = false;
  liveParts().forEach(function (part) {
    words(part.getAttribute("data-live-topics")).forEach(function (t) { topics[t] = true; });
    var wanted = words(part.getAttribute("data-live-keys"));
    if (!wanted.length) {
      everyKey = true;
    }
    wanted.forEach(function (k) { keys[k] = true; });
  });
  var query = "topics=" + encodeURIComponent(Object.keys(topics).join(","));
  if (!everyKey) {
    query += "&keys=" + encodeURIComponent(Object.keys(keys).join(","));
  }

  // -- reloading parts ---------------------------------------------------------------------

  var dirty = {};
  var timer = null;
  var loading = false;
  var lastLoad = 0;
  var stopped = false;

  function keysOf(topic, data) {
    if (topic === "message") {
      return [data.id, data.request_id];
    }
    if (topic === "conversation") {
      return [data.request_id];
    }
    return [data.id];
  }

  function wants(part, topic, data) {
    if (topic === "refresh") {
      return true;
    }
    if (words(part.getAttribute("data-live-topics")).indexOf(topic) < 0) {
      return false;
    }
    var wanted = words(part.getAttribute("data-live-keys"));
    return !wanted.length || keysOf(topic, data).some(function (k) {
      return k && wanted.indexOf(k) >= 0;
    });
  }

  // A deleted message leaves the page at once (its row in a list has the id message-<id>);
  // the parts showing it are then reloaded as for any change, without it.
  function dropDeleted(topic, data) {
    if (topic !== "message" || !data || !data.deleted || !data.id) {
      return;
    }
    var row = document.getElementById("message-" + data.id);
    if (row && !inUse(row)) {
      row.parentNode.removeChild(row);
    }
  }

  function changed(topic, data) {
    dropDeleted(topic, data);
    liveParts().forEach(function (part) {
      if (wants(part, topic, data || {})) {
        dirty[part.id] = true;
      }
    });
    schedule();
  }

  function schedule() {
    if (timer || loading || stopped || !Object.keys(dirty).length) {
      return;
    }
    timer = window.setTimeout(reload, Math.max(0, lastLoad + MIN_GAP_MS - Date.now()));
  }

  // A part holding the field someone is typing in or choosing from waits until they leave it,
  // and so does one with a choice picked but not yet sent (an owner chosen, Assign not yet
  // pressed): swapping it would put the saved choice back under their click.
  function inUse(part) {
    var active = document.activeElement;
    if (active && part.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
      return true;
    }
    return Array.prototype.some.call(part.querySelectorAll("select"), picked);
  }

  // Chosen by the person: not the option the page came with (the first, when none is marked).
  function picked(select) {
    var shown = 0;
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].defaultSelected) {
        shown = i;
        break;
      }
    }
    return select.selectedIndex !== shown;
  }

  function waitUntilLeft(part) {
    var again = function () {
      part.removeEventListener("focusout", again);
      part.removeEventListener("change", again);
      dirty[part.id] = true;
      window.setTimeout(schedule, 0);
    };
    part.addEventListener("focusout", again);
    part.addEventListener("change", again);
  }

  // Forms in a swapped-in part ask before deleting or cancelling, as app.js does on load.
  function enhance(part) {
    part.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }

  function swap(html, ids) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    ids.forEach(function (id) {
      var old = document.getElementById(id);
      var replacement = fresh.getElementById(id);
      if (!old || !replacement) {
        return;
      }
      if (inUse(old)) {
        waitUntilLeft(old);
        return;
      }
      var node = document.importNode(replacement, true);
      old.parentNode.replaceChild(node, old);
      enhance(node);
    });
    document.documentElement.setAttribute("data-live-updated", String(Date.now()));
    document.dispatchEvent(new CustomEvent("live:updated", { detail: { ids: ids } }));
  }

  function reload() {
    timer = null;
    loading = true;
    lastLoad = Date.now();
    var ids = Object.keys(dirty);
    dirty = {};
    window.fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html" },
    }).then(function (response) {
      if (response.redirected && new URL(response.url).pathname === "/login") {
        end();
        return null;
      }
      return response.text();
    }).then(function (html) {
      if (html !== null) {
        swap(html, ids);
      }
    }).catch(function () {
      ids.forEach(function (id) { dirty[id] = true; });
    }).then(function () {
      loading = false;
      schedule();
    });
  }

  // -- sending a form without leaving the page ---------------------------------------------

  // A form marked data-live-submit is posted in the background. Accepted, the page's live
  // parts are reloaded from the answer and the form is emptied; refused, the reasons of the
  // answer (the role=alert children of the form's section) replace those shown, and what was
  // typed stays. Without scripts the form posts as usual.
  function section(form) {
    var holder = form.parentNode;
    while (holder && holder !== document.body && !holder.id) {
      holder = holder.parentNode;
    }
    return holder && holder.id ? holder : null;
  }

  function showRefusal(form, html) {
    var holder = section(form);
    var fresh = holder && new DOMParser().parseFromString(html, "text/html").getElementById(holder.id);
    if (!fresh) {
      return false;
    }
    holder.querySelectorAll(":scope > [role=alert]").forEach(function (old) { old.remove(); });
    fresh.querySelectorAll(":scope > [role=alert]").forEach(function (alert) {
      form.parentNode.insertBefore(document.importNode(alert, true), form);
    });
    return true;
  }

  function accepted(form, html) {
    var holder = section(form);
    if (holder) {
      holder.querySelectorAll(":scope > [role=alert]").forEach(function (old) { old.remove(); });
    }
    form.querySelectorAll("textarea").forEach(function (field) {
      field.value = "";
      field.removeAttribute("aria-invalid");
      field.dispatchEvent(new Event("input", { bubbles: true }));
    });
    var ids = liveParts().map(function (part) { return part.id; });
    swap(html, ids);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute || !form.hasAttribute("data-live-submit")) {
      return;
    }
    event.preventDefault();
    var buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach(function (button) { button.disabled = true; });
    var done = function () {
      buttons.forEach(function (button) { button.disabled = false; });
    };
    window.fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    }).then(function (response) {
      if (response.status === 401) {
        end();
        return;
      }
      return response.text().then(function (html) {
        if (response.ok) {
          accepted(form, html);
        } else if (!showRefusal(form, html)) {
          document.open();
          document.write(html);
          document.close();
        }
      });
    }).catch(function () {
      // Sent or not is unknown: never post twice; what the server has shows up below.
      show("delayed");
      changed("refresh", {});
    }).then(done, done);
  });

  // -- hearing about changes ---------------------------------------------------------------

  var status = document.getElementById("live-status");
  var mode = "off";

  function show(which) {
    if (!status) {
      return;
    }
    var text = which ? status.getAttribute("data-" + which) : "";
    status.textContent = text || "";
    status.hidden = !text;
  }

  function setMode(value) {
    mode = value;
    document.documentElement.setAttribute("data-live", value);
  }

  function end() {
    stopped = true;
    setMode("off");
    show("ended");
  }

  function heard(topic, event) {
    if (event.lastEventId) {
      cursor = event.lastEventId;
    }
    if (topic !== "ready") {
      var data = {};
      try {
        data = JSON.parse(event.data || "{}");
      } catch (ignored) {
        data = {};
      }
      changed(topic, data);
    }
  }

  function stream() {
    if (!window.EventSource) {
      poll();
      return;
    }
    var url = "/live/events?" + query + (cursor ? "&after=" + encodeURIComponent(cursor) : "");
    var source = new window.EventSource(url);
    var failures = 0;
    TOPICS.concat(["ready"]).forEach(function (topic) {
      source.addEventListener(topic, function (event) { heard(topic, event); });
    });
    source.onopen = function () {
      failures = 0;
      setMode("stream");
      show("");
    };
    source.onerror = function () {
      failures += 1;
      // Refused (closed for good), or failing again right after a retry: poll instead.
      if (source.readyState === window.EventSource.CLOSED || failures >= 2) {
        source.close();
        poll();
      }
    };
  }

  var polls = 0;

  function poll() {
    if (stopped) {
      return;
    }
    setMode("poll");
    window.setTimeout(pollOnce, POLL_MS);
  }

  function pollOnce() {
    var url = "/live/poll?" + query + (cursor ? "&after=" + encodeURIComponent(cursor) : "");
    window.fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (response.status === 401) {
        end();
        return null;
      }
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      return response.json();
    }).then(function (body) {
      if (!body) {
        return;
      }
      cursor = body.cursor;
      body.events.forEach(function (event) { changed(event.topic, event.data); });
      show("");
      polls += 1;
      if (polls % STREAM_AGAIN_AFTER_POLLS === 0) {
        stream();
      } else {
        poll();
      }
    }).catch(function () {
      show("delayed");
      poll();
    });
  }

  stream();
})();
