// The segment builder: rows of conditions <-> the JSON form <-> the text form, a live
// count and sample, and saving. Every check is the server's (POST /v1/segments/validate),
// so the page never accepts what the API would refuse. No innerHTML: names and values
// are user data and only ever become text nodes or option values.
(function () {
  "use strict";

  var root = document.querySelector('[data-testid="segment-builder"]');
  if (!root) { return; }
  var api = window.perennial.fetchJson;
  var label = function (name) { return root.dataset[name] || name; };
  var $ = function (id) { return root.querySelector('[data-testid="' + id + '"]'); };
  var list = $("builder-conditions");
  var text = $("builder-text");
  var combinator = $("builder-combinator");
  var catalog = { fields: [], event_types: [], tags: [], segments: [] };
  var rows = [];
  var timer = null;
  var generation = 0;

  var FIELD_OPS = ["==", "!=", ">", ">=", "<", "<=", "in", "not_in", "between",
    "is_null", "is_not_null", "contains", "starts_with"];

  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function select(testid, options, value) {
    var node = element("select", { "data-testid": testid });
    options.forEach(function (option) {
      var pair = Array.isArray(option) ? option : [option, option];
      var item = element("option", { value: pair[0] }, [pair[1]]);
      if (pair[0] === value) { item.selected = true; }
      node.appendChild(item);
    });
    return node;
  }

  function fieldKind(name) {
    var found = catalog.fields.filter(function (f) { return f.name === name; })[0];
    return found ? found.kind : "text";
  }

  function literal(raw, kind) {
    var trimmed = String(raw).trim();
    if (kind === "number" && trimmed !== "" && !isNaN(Number(trimmed))) { return Number(trimmed); }
    return trimmed;
  }

  // -- rows <-> JSON ---------------------------------------------------------------

  function rowJson(row) {
    if (row.kind === "segment") { return row.segment ? { segment: row.segment } : null; }
    if (row.kind === "tag") { return row.tag ? { tag: row.tag } : null; }
    if (row.kind === "event") {
      if (!row.event) { return null; }
      var doc = { event: row.event, did: row.did !== "no" };
      if (row.countOp && row.countOp !== "any") { doc.count = { op: row.countOp, times: parseInt(row.times || "1", 10) }; }
      if (row.window === "last") { doc.window = { last: parseInt(row.days || "30", 10), unit: "days" }; }
      return doc;
    }
    if (!row.field) { return null; }
    var field = { field: row.field, op: row.op || "==" };
    var kind = fieldKind(row.field);
    if (field.op === "in" || field.op === "not_in" || field.op === "between") {
      field.values = String(row.value || "").split(",").map(function (v) { return literal(v, kind); });
    } else if (field.op !== "is_null" && field.op !== "is_not_null") {
      field.value = literal(row.value || "", field.op === "contains" || field.op === "starts_with" ? "text" : kind);
    }
    return field;
  }

  function toJson() {
    var parts = rows.map(rowJson).filter(function (doc) { return doc !== null; });
    if (!parts.length) { return null; }
    if (parts.length === 1) { return parts[0]; }
    var doc = {};
    doc[combinator.value] = parts;
    return doc;
  }

  function rowOf(doc) {
    var keys = Object.keys(doc);
    if (doc.segment !== undefined && keys.length === 1) { return { kind: "segment", segment: doc.segment }; }
    if (doc.tag !== undefined && keys.length === 1) { return { kind: "tag", tag: doc.tag }; }
    if (doc.event !== undefined) {
      if (doc.where || doc.followed_by) { return null; }
      var window = doc.window;
      if (window && !(window.last !== undefined && window.unit === "days")) { return null; }
      return {
        kind: "event", event: doc.event, did: doc.did === false ? "no" : "yes",
        countOp: doc.count ? doc.count.op : "any", times: doc.count ? String(doc.count.times) : "1",
        window: window ? "last" : "ever", days: window ? String(window.last) : "30"
      };
    }
    if (doc.field !== undefined && doc.function === undefined) {
      var value = doc.values !== undefined ? doc.values.join(", ") : (doc.value === undefined ? "" : doc.value);
      if (typeof value === "object") { return null; }
      return { kind: "field", field: doc.field, op: doc.op, value: String(value) };
    }
    return null;
  }

  function fromJson(doc) {
    var items = doc.all || doc.any || [doc];
    var drawn = items.map(rowOf);
    if (drawn.some(function (row) { return row === null; })) { return null; }
    combinator.value = doc.any ? "any" : "all";
    return drawn;
  }

  // -- drawing ---------------------------------------------------------------------

  function draw() {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    rows.forEach(function (row, index) { list.appendChild(drawRow(row, index)); });
  }

  function bind(node, row, key) {
    node.addEventListener("change", function () { row[key] = node.value; if (key === "kind") { draw(); } changed(); });
    if (node.tagName === "INPUT") { node.addEventListener("input", function () { row[key] = node.value; changed(); }); }
    return node;
  }

  function drawRow(row, index) {
    var item = element("li", { "data-testid": "builder-condition", "data-index": String(index) });
    item.appendChild(bind(select("condition-kind", [["field", label("labelField")], ["event", label("labelEvent")],
      ["tag", label("labelTag")], ["segment", label("labelSegment")]], row.kind), row, "kind"));
    if (row.kind === "segment") {
      row.segment = row.segment || catalog.segments[0] || "";
      item.appendChild(bind(select("condition-segment", catalog.segments, row.segment), row, "segment"));
    } else if (row.kind === "tag") {
      row.tag = row.tag || catalog.tags[0] || "";
      item.appendChild(bind(select("condition-tag", catalog.tags, row.tag), row, "tag"));
    } else if (row.kind === "event") {
      row.event = row.event || catalog.event_types[0] || "";
      item.appendChild(bind(select("condition-did", [["yes", label("labelDid")], ["no", label("labelDidNot")]], row.did || "yes"), row, "did"));
      item.appendChild(bind(select("condition-event", catalog.event_types, row.event), row, "event"));
      item.appendChild(bind(select("condition-count-op", [["any", label("labelAnyCount")], [">=", label("labelAtLeast")],
        ["<=", label("labelAtMost")], ["==", label("labelExactly")]], row.countOp || "any"), row, "countOp"));
      item.appendChild(bind(element("input", { type: "number", min: "0", value: row.times || "1", "data-testid": "condition-times" }), row, "times"));
      item.appendChild(bind(select("condition-window", [["ever", label("labelEver")], ["last", label("labelLastDays")]], row.window || "ever"), row, "window"));
      item.appendChild(bind(element("input", { type: "number", min: "1", value: row.days || "30", "data-testid": "condition-days" }), row, "days"));
    } else {
      row.field = row.field || (catalog.fields[0] && catalog.fields[0].name) || "";
      item.appendChild(bind(select("condition-field", catalog.fields.map(function (f) { return [f.name, f.name + " (" + f.kind + ")"]; }), row.field), row, "field"));
      item.appendChild(bind(select("condition-op", FIELD_OPS, row.op || "=="), row, "op"));
      item.appendChild(bind(element("input", { type: "text", value: row.value || "", "data-testid": "condition-value" }), row, "value"));
    }
    var remove = element("button", { type: "button", "data-testid": "condition-remove" }, [label("labelRemove")]);
    remove.addEventListener("click", function () { rows.splice(index, 1); draw(); changed(); });
    item.appendChild(remove);
    return item;
  }

  // -- server round trips ------------------------------------------------------------

  function showError(message) {
    var node = $("builder-error");
    node.textContent = message || "";
    node.hidden = !message;
  }

  function showNote(message) {
    var node = $("builder-note");
    node.textContent = message || "";
    node.hidden = !message;
  }

  function later(action) {
    clearTimeout(timer);
    timer = setTimeout(action, 300);
  }

  function changed() {
    later(function () {
      var doc = toJson();
      if (!doc) { text.value = ""; showCount(null); return; }
      check({ expression_json: doc }, false);
    });
  }

  function check(body, fromText) {
    var mine = ++generation;
    return api("/v1/segments/validate", { method: "POST", body: body }).then(function (answer) {
      if (mine !== generation) { return; }
      if (!answer.valid) {
        showError(answer.error.message);
        showCount(null);
        return;
      }
      showError("");
      if (fromText) {
        var drawn = fromJson(answer.expression_json);
        showNote(drawn ? "" : label("labelTextOnly"));
        if (drawn) { rows = drawn; draw(); }
      } else {
        text.value = answer.expression;
        showNote("");
      }
      return preview(answer.expression, mine);
    }).catch(function (error) { showError(error.message); });
  }

  function preview(expression, mine) {
    return api("/v1/segments/preview?sample=10", { method: "POST", body: { expression: expression } })
      .then(function (answer) { if (mine === generation) { showCount(answer); } })
      .catch(function (error) { showError(error.message); });
  }

  function showCount(answer) {
    var sample = $("builder-sample");
    while (sample.firstChild) { sample.removeChild(sample.firstChild); }
    $("builder-count").textContent = answer ? answer.count.toLocaleString() : "—";
    $("builder-total").textContent = answer ? label("labelCount").replace("{total}", answer.customers.toLocaleString()) : "";
    root.dataset.count = answer ? String(answer.count) : "";
    (answer ? answer.sample : []).forEach(function (id) {
      var link = element("a", { href: "/customers/" + encodeURIComponent(id), "data-testid": "builder-member" }, [id]);
      sample.appendChild(element("li", {}, [link]));
    });
  }

  text.addEventListener("input", function () {
    later(function () {
      if (!text.value.trim()) { showCount(null); return; }
      check({ expression: text.value }, true);
    });
  });
  combinator.addEventListener("change", changed);
  $("builder-add").addEventListener("click", function () {
    rows.push({ kind: "field" });
    draw();
    changed();
  });

  var form = $("builder-save-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { name: form.elements.name.value, title: form.elements.title.value, expression: text.value };
      api("/v1/segments", { method: "POST", body: body }).then(function (answer) {
        $("builder-saved").textContent = label("labelSaved")
          .replace("{name}", answer.segment.name).replace("{members}", answer.segment.members.toLocaleString());
        showError("");
      }).catch(function (error) { showError(error.message); });
    });
  }

  api("/v1/segments/fields").then(function (answer) {
    catalog = answer;
    root.dataset.ready = "true";
  }).catch(function (error) { showError(error.message); });
})();
