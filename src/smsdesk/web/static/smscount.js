/*
 * Live SMS counter for the reply box: GSM-7 or UCS-2, parts, characters left.
 *
 * A plain-JavaScript twin of smsdesk/domain/encoding.py (analyse, ucs2_characters,
 * gsm7_suggestion); tests/browser/test_smscount.py checks both give the same answers.
 * Change the tables here and there together.
 *
 * Progressive enhancement: <textarea data-sms-counter="OUTPUT_ID"> gets its count written
 * into #OUTPUT_ID on every input. Every visible word comes from data attributes on the output
 * element (data-template, data-gsm7-name, data-ucs2-name, data-ucs2-label,
 * data-replace-label) so the server can translate them. User text is only ever set with
 * textContent.
 */
(function () {
  "use strict";

  // GSM 03.38 basic table in code order; 0x1B is the escape to the extension table.
  var GSM7_BASIC =
    "@£$¥èéùìòÇ\nØø\rÅå" +
    "Δ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ" +
    " !\"#¤%&'()*+,-./" +
    "0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNO" +
    "PQRSTUVWXYZÄÖÑÜ§" +
    "¿abcdefghijklmno" +
    "pqrstuvwxyzäöñüà";
  // Characters reached through the escape: two septets each.
  var GSM7_EXTENSION = "\f^{}\\[~]|€";

  var GSM7_SINGLE = 160;
  var GSM7_PART = 153;
  var UCS2_SINGLE = 70;
  var UCS2_PART = 67;

  var TYPOGRAPHIC = {
    "\u201c": '"', // “
    "\u201d": '"', // ”
    "\u201e": '"', // „
    "\u201f": '"', // ‟
    "\u00ab": '"', // «
    "\u00bb": '"', // »
    "\u2033": '"', // ″
    "\u2018": "'", // ‘
    "\u2019": "'", // ’
    "\u201a": "'", // ‚
    "\u201b": "'", // ‛
    "\u2032": "'", // ′
    "`": "'",
    "\u00b4": "'", // ´
    "\u2013": "-", // –
    "\u2014": "-", // —
    "\u2012": "-", // ‒
    "\u2015": "-", // ―
    "\u2212": "-", // −
    "\u2010": "-", // ‐
    "\u2011": "-", // ‑
    "\u2026": "...", // …
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\u2022": "-", // •
    "\t": " ",
  };

  // Septets per GSM-7 character; a character missing here forces UCS-2.
  var SEPTETS = new Map();
  Array.prototype.forEach.call(GSM7_BASIC, function (char) {
    if (char !== "\u001b") {
      SEPTETS.set(char, 1);
    }
  });
  Array.prototype.forEach.call(GSM7_EXTENSION, function (char) {
    SEPTETS.set(char, 2);
  });

  // The text as code points, like iterating a Python str (a surrogate pair is one item).
  function codePoints(text) {
    return Array.from(text);
  }

  function ucs2Units(char) {
    return char.length; // 2 for a surrogate pair, 1 otherwise
  }

  // The distinct characters, in order of appearance, that GSM-7 cannot carry.
  function ucs2Characters(text) {
    var seen = new Set();
    codePoints(text).forEach(function (char) {
      if (!SEPTETS.has(char)) {
        seen.add(char);
      }
    });
    return Array.from(seen);
  }

  // Greedy split by unit cost; a character is never cut, so escape and surrogate pairs stay
  // whole. Returns the parts and the units each part uses.
  function split(chars, cost, single, part) {
    var costs = chars.map(cost);
    var total = costs.reduce(function (sum, units) {
      return sum + units;
    }, 0);
    if (total <= single) {
      return {
        parts: chars.length ? [chars.join("")] : [],
        partUnits: chars.length ? [total] : [],
        total: total,
      };
    }
    var parts = [];
    var partUnits = [];
    var start = 0;
    var used = 0;
    costs.forEach(function (units, index) {
      if (used + units > part) {
        parts.push(chars.slice(start, index).join(""));
        partUnits.push(used);
        start = index;
        used = 0;
      }
      used += units;
    });
    parts.push(chars.slice(start).join(""));
    partUnits.push(used);
    return { parts: parts, partUnits: partUnits, total: total };
  }

  // Classify a text as GSM-7 or UCS-2, count its units and parts, and the room left in the
  // last part (perSegment is the limit that applies: 160/70 alone, 153/67 when concatenated).
  function analyse(text) {
    text = String(text == null ? "" : text);
    var chars = codePoints(text);
    var offenders = ucs2Characters(text);
    var gsm7 = offenders.length === 0;
    var single = gsm7 ? GSM7_SINGLE : UCS2_SINGLE;
    var part = gsm7 ? GSM7_PART : UCS2_PART;
    var cost = gsm7
      ? function (char) {
          return SEPTETS.get(char);
        }
      : ucs2Units;
    var result = split(chars, cost, single, part);
    var segments = result.parts.length;
    var perSegment = segments > 1 ? part : single;
    var lastUnits = segments ? result.partUnits[segments - 1] : 0;
    return {
      encoding: gsm7 ? "gsm7" : "ucs2",
      segments: segments,
      units: result.total,
      perSegment: perSegment,
      remaining: perSegment - lastUnits,
      ucs2Chars: offenders,
      parts: result.parts,
    };
  }

  // The text with typographic quotes, dashes and spaces replaced by GSM-7 ones.
  function suggest(text) {
    return codePoints(String(text == null ? "" : text))
      .map(function (char) {
        return Object.prototype.hasOwnProperty.call(TYPOGRAPHIC, char) ? TYPOGRAPHIC[char] : char;
      })
      .join("");
  }

  function fillTemplate(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function codePointLabel(char) {
    var hex = char.codePointAt(0).toString(16).toUpperCase();
    return "U+" + ("0000" + hex).slice(-Math.max(4, hex.length));
  }

  function render(textarea, output) {
    var text = textarea.value;
    var info = analyse(text);
    var data = output.dataset;
    var encodingName =
      info.encoding === "gsm7" ? data.gsm7Name || "GSM-7" : data.ucs2Name || "UCS-2";

    output.setAttribute("data-encoding", info.encoding);
    output.setAttribute("data-segments", String(info.segments));
    output.setAttribute("data-units", String(info.units));
    output.setAttribute("data-remaining", String(info.remaining));
    output.replaceChildren();

    var count = document.createElement("span");
    count.className = "sms-count";
    count.textContent = fillTemplate(
      data.template || "{units} · {segments} SMS · {encoding}",
      {
        units: info.units,
        segments: info.segments,
        encoding: encodingName,
        perSegment: info.perSegment,
        remaining: info.remaining,
      }
    );
    output.appendChild(count);

    if (info.ucs2Chars.length) {
      var why = document.createElement("span");
      why.className = "sms-ucs2";
      if (data.ucs2Label) {
        why.appendChild(document.createTextNode(data.ucs2Label + " "));
      }
      info.ucs2Chars.forEach(function (char) {
        var mark = document.createElement("mark");
        mark.className = "ucs2-char";
        mark.title = codePointLabel(char);
        mark.textContent = char;
        why.appendChild(mark);
        why.appendChild(document.createTextNode(" "));
      });
      output.appendChild(document.createTextNode(" "));
      output.appendChild(why);
    }

    var suggestion = suggest(text);
    if (suggestion !== text) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sms-replace";
      button.textContent = data.replaceLabel || "GSM-7";
      button.addEventListener("click", function () {
        textarea.value = suggestion;
        textarea.dispatchEvent(new Event("input", { bubbles: true }));
        textarea.focus();
      });
      output.appendChild(document.createTextNode(" "));
      output.appendChild(button);
    }
  }

  // Enhance every <textarea data-sms-counter="OUTPUT_ID"> under root (default: document).
  function attach(root) {
    root = root || document;
    var textareas = Array.from(root.querySelectorAll("textarea[data-sms-counter]"));
    if (root.matches && root.matches("textarea[data-sms-counter]")) {
      textareas.unshift(root);
    }
    textareas.forEach(function (textarea) {
      if (textarea.dataset.smsCounterAttached) {
        return;
      }
      var output = document.getElementById(textarea.dataset.smsCounter);
      if (!output) {
        return;
      }
      textarea.dataset.smsCounterAttached = "1";
      textarea.addEventListener("input", function () {
        render(textarea, output);
      });
      render(textarea, output);
    });
  }

  window.SmsCount = { analyse: analyse, suggest: suggest, attach: attach };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      attach();
    });
  } else {
    attach();
  }
})();
