/* Form widgets of the analysis builder, bound to the query object they edit. Each calls `changed()` after
   an edit so the builder can refresh the query JSON. Pickers are fed by the data catalogue and show display
   names: events grouped by stage, properties grouped by event / person / group, each with a search box. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t;
  const F = (EP.fields = {});
  const OPS = ["eq", "neq", "contains", "not_contains", "regex", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"];
  // The stages of the standard education events (PRODUCT.md); other events are listed after them.
  const STAGES = {
    acquisition: ["page_view", "ad_click", "lead_created", "lead_qualified", "lead_assigned", "call_connected", "wechat_added"],
    order: ["trial_booked", "trial_attended", "order_paid", "order_refunded"],
    learning: ["course_enrolled", "lesson_scheduled", "lesson_attended", "lesson_completed", "homework_submitted", "quiz_answered", "course_completed"],
    referral: ["referral_shared", "referral_signup"],
    b2b: ["staff_login", "student_enrolled"],
  };
  F.STAGES = STAGES;

  F.row = (label, ...controls) => el("label.field", {}, el("span.field-label", { text: label }), ...controls);

  function option(value, text, selected, title) {
    const node = el("option", { value: value, text: text, selected: selected, title: title || null });
    if (EP.userStrings.has(text)) node.setAttribute("translate", "no");
    return node;
  }

  /* A select with a search box: typing keeps the options whose text (or value) contains the words. */
  function searchable(select, testid) {
    const search = el("input.picker-search", { type: "search", placeholder: t("picker.search"), "data-testid": testid ? testid + "-search" : null,
      oninput: () => {
        const words = search.value.trim().toLowerCase();
        let first = null;
        for (const o of select.querySelectorAll("option")) {
          const hit = !words || (o.textContent + " " + o.value).toLowerCase().includes(words);
          o.hidden = !hit;
          if (hit && !first && o.value) first = o;
        }
        for (const g of select.querySelectorAll("optgroup")) g.hidden = ![...g.children].some((o) => !o.hidden);
        if (first && select.selectedOptions[0] && select.selectedOptions[0].hidden) {
          select.value = first.value;
          select.dispatchEvent(new Event("change"));
        }
      } });
    return el("span.picker", {}, search, select);
  }

  F.eventSelect = function (cat, value, onchange, allowAny, testid) {
    const volumes = Object.fromEntries(cat.events.map((e) => [e.name, e.volume]));
    const names = cat.events.map((e) => e.name);
    if (value && !names.includes(value)) names.unshift(value);
    const label = (name) => EP.eventLabel(name) + (name in volumes ? " (" + EP.fmt(volumes[name]) + ")" : "");
    const groups = [];
    if (allowAny) groups.push(option("", t("builder.any_event"), !value));
    const placed = new Set();
    for (const [stage, members] of Object.entries(STAGES)) {
      const here = members.filter((n) => names.includes(n));
      here.forEach((n) => placed.add(n));
      if (here.length) groups.push(el("optgroup", { label: t("stage." + stage) },
        here.map((n) => option(n, label(n), n === value, EP.eventAbout(n)))));
    }
    const rest = names.filter((n) => !placed.has(n));
    if (rest.length) groups.push(el("optgroup", { label: t("stage.other") }, rest.map((n) => option(n, label(n), n === value, EP.eventAbout(n)))));
    const select = el("select.event-picker", { "data-testid": testid, onchange: (e) => onchange(e.target.value || null) }, groups);
    return searchable(select, testid);
  };

  /* Every property a filter or breakdown can use, grouped: [[group title, [[reference, label]]]]. */
  F.propertyGroups = function (cat, opts) {
    const out = [];
    const events = cat.properties.map((p) => [p.name, EP.propertyLabel(p.name)]);
    if (events.length) out.push([t("picker.event_properties"), events]);
    const persons = cat.person_properties.map((p) => ["person." + p.name, EP.propertyLabel("person." + p.name)]);
    if (persons.length) out.push([t("picker.person_properties"), persons]);
    for (const g of cat.groups || []) {
      const items = [];
      if (!opts || !opts.noGroupKeys) items.push(["group." + g.type, EP.propertyLabel("group." + g.type)]);
      for (const p of g.properties || []) items.push(["group." + g.type + "." + p.name, EP.propertyLabel("group." + g.type + "." + p.name)]);
      out.push([t("picker.group_properties").replace("{group}", EP.propertyLabel("group." + g.type)), items]);
    }
    return out;
  };

  F.propertySelect = function (cat, value, onchange, testid, opts) {
    const groups = F.propertyGroups(cat, opts);
    const known = new Set(groups.flatMap(([, items]) => items.map(([ref]) => ref)));
    const nodes = [option("", (opts && opts.emptyLabel) || t("picker.choose_property"), !value)];
    if (value && !known.has(value)) nodes.push(option(value, EP.propertyLabel(value), true));
    for (const [title, items] of groups)
      nodes.push(el("optgroup", { label: title }, items.map(([ref, label]) => option(ref, label, ref === value, EP.propertyAbout(ref)))));
    const select = el("select.property-picker", { "data-testid": testid, onchange: (e) => onchange(e.target.value || null) }, nodes);
    return searchable(select, testid);
  };
  F.propertyInput = F.propertySelect;

  F.select = function (options, value, onchange, testid) {
    return el("select", { "data-testid": testid, onchange: (e) => onchange(e.target.value) },
      options.map(([v, label]) => option(v, label, String(v) === String(value))));
  };
  /* Options whose words are messages "<prefix>.<value>". */
  F.choices = (prefix, values) => values.map((v) => [v, t(prefix + "." + v)]);

  F.text = function (value, onchange, attrs) {
    return el("input", Object.assign({ value: value === null || value === undefined ? "" : value,
      onchange: (e) => onchange(e.target.value.trim()) }, attrs || {}));
  };

  F.number = function (value, onchange, attrs) {
    return el("input", Object.assign({ type: "number", value: value, onchange: (e) => onchange(Number(e.target.value)) }, attrs || {}));
  };

  function filterValue(op, text) {
    if (op === "is_set" || op === "is_not_set") return undefined;
    const num = (s) => (s !== "" && !isNaN(Number(s)) ? Number(s) : s);
    if (op === "in" || op === "not_in") return text.split(",").map((s) => num(s.trim())).filter((s) => s !== "");
    if (op === "between") return text.split(",").slice(0, 2).map((s) => Number(s.trim()));
    if (["gt", "gte", "lt", "lte"].includes(op)) return Number(text);
    return text;
  }

  function filterText(f) {
    return Array.isArray(f.value) ? f.value.join(",") : f.value === undefined || f.value === null ? "" : String(f.value);
  }
  F.OPS = OPS;
  F.filterValue = filterValue;
  F.filterText = filterText;

  /* A list of property conditions (all must hold), edited in place. */
  F.filters = function (cat, list, changed, prefix) {
    const box = el("div.filters");
    const redraw = () => {
      box.replaceChildren(...list.map((f, i) => {
        const update = () => {
          const value = filterValue(f.op || "eq", valueInput.value);
          if (value === undefined) delete f.value; else f.value = value;
          valueInput.hidden = f.op === "is_set" || f.op === "is_not_set";
          changed();
        };
        const valueInput = el("input.filter-value", { value: filterText(f), placeholder: t("picker.value_hint." + (["in", "not_in"].includes(f.op) ? "list" : f.op === "between" ? "between" : "one")),
          "data-testid": prefix + "-filter-value-" + i, onchange: update, hidden: f.op === "is_set" || f.op === "is_not_set" });
        return el("div.filter-row", {},
          F.propertySelect(cat, f.property, (v) => { f.property = v; changed(); }, prefix + "-filter-property-" + i),
          F.select(F.choices("op", OPS), f.op || "eq", (v) => { f.op = v; update(); }, prefix + "-filter-op-" + i),
          valueInput,
          el("button.link.danger", { type: "button", text: "×", title: t("common.remove"), onclick: () => { list.splice(i, 1); redraw(); changed(); } }));
      }), el("button.link", { type: "button", text: t("builder.add_filter"), "data-testid": prefix + "-add-filter",
        onclick: () => { list.push({ property: "", op: "eq", value: "" }); redraw(); } }));
    };
    redraw();
    return box;
  };

  // date ranges: presets in words, or a custom range ----------------------------------------------
  const PRESETS = [["today", "today"], ["yesterday", "yesterday"], ["-6d", "today"], ["-13d", "today"], ["-29d", "today"],
    ["-59d", "today"], ["-89d", "today"], ["-4w", "today"], ["-8w", "today"], ["-12w", "today"], ["-3m", "today"], ["-6m", "today"], ["-12m", "today"]];
  /* A relative date in words: today, yesterday, 30 days ago... */
  F.dateWords = function (value) {
    if (!value) return "";
    if (value === "today" || value === "yesterday") return t("date." + value);
    const m = /^-(\d+)([dwmy])$/.exec(value);
    if (!m) return value;
    return t("date.ago_" + m[2]).replace("{n}", m[1]);
  };
  function presetLabel(from, to) {
    if (from === to && (from === "today" || from === "yesterday")) return t("date." + from);
    const m = /^-(\d+)([dwmy])$/.exec(from || "");
    if (m && (to || "today") === "today") {
      const n = Number(m[1]) + (m[2] === "d" ? 1 : 0);
      return t("date.last_" + m[2]).replace("{n}", String(n));
    }
    return null;
  }
  F.dateRange = function (q, changed) {
    q.date_range = q.date_range || {};
    const dr = q.date_range;
    const key = (dr.date_from || "-7d") + "|" + (dr.date_to || "today");
    const options = PRESETS.map(([f, to]) => [f + "|" + to, presetLabel(f, to)]);
    if (!options.some(([k]) => k === key) && presetLabel(dr.date_from || "-7d", dr.date_to || "today"))
      options.unshift([key, presetLabel(dr.date_from || "-7d", dr.date_to || "today")]);
    const isPreset = options.some(([k]) => k === key);
    options.push(["custom", t("date.custom")]);
    const custom = el("div.inline.custom-range", { hidden: isPreset },
      F.row(t("builder.date_from"), F.text(dr.date_from, (v) => { if (v) dr.date_from = v; else delete dr.date_from; changed(); },
        { size: 11, placeholder: t("date.placeholder"), "data-testid": "date-from" })),
      F.row(t("builder.date_to"), F.text(dr.date_to, (v) => { if (v) dr.date_to = v; else delete dr.date_to; changed(); },
        { size: 11, placeholder: t("date.placeholder"), "data-testid": "date-to" })));
    const select = F.select(options, isPreset ? key : "custom", (v) => {
      custom.hidden = v !== "custom";
      if (v !== "custom") { const [f, to] = v.split("|"); dr.date_from = f; dr.date_to = to; changed(); }
    }, "date-preset");
    return el("div.date-range", {}, F.row(t("builder.date_range"), select), custom);
  };

  F.granularity = function (q, changed) {
    return F.row(t("builder.granularity"), F.select(F.choices("unit", ["minute", "hour", "day", "week", "month"]), q.granularity || "day",
      (v) => { q.granularity = v; changed(); }, "granularity"));
  };

  /* Breakdown: the property, how many values to keep (the rest is "other values"), their order, and
     whether to hide the "other values" line. Order and hiding are display choices (q.$view). */
  F.breakdown = function (cat, q, changed) {
    const current = q.breakdown && q.breakdown.properties ? q.breakdown.properties[0] : "";
    const view = (q.$view = q.$view || {});
    const more = el("div.inline.breakdown-options", { hidden: !current },
      F.row(t("breakdown.limit"), F.number((q.breakdown && q.breakdown.limit) || 10, (v) => {
        if (q.breakdown) q.breakdown.limit = Math.max(1, Math.min(100, v || 10));
        changed();
      }, { min: 1, max: 100, style: "width:5em", "data-testid": "breakdown-limit" })),
      F.row(t("breakdown.sort"), F.select(F.choices("breakdown.sort", ["value_desc", "value_asc", "name"]), view.sort || "value_desc",
        (v) => { view.sort = v; changed({ redraw: true }); }, "breakdown-sort")),
      el("label.check", {}, el("input", { type: "checkbox", checked: !!view.hideOther, "data-testid": "hide-other",
        onchange: (e) => { view.hideOther = e.target.checked; changed({ redraw: true }); } }), t("breakdown.hide_other")));
    return el("div.field", {}, F.row(t("builder.breakdown"), F.propertySelect(cat, current, (v) => {
      if (v) q.breakdown = { properties: [v], limit: (q.breakdown && q.breakdown.limit) || 10 };
      else delete q.breakdown;
      more.hidden = !v;
      changed();
    }, "breakdown", { emptyLabel: t("builder.no_breakdown") })), more);
  };

  // The definition editors (journey_editor.js, tag_editor.js): a definition as forms and as JSON, in step -----

  F.filled = (v) => v !== undefined && v !== null && v !== "";
  F.clone = (v) => JSON.parse(JSON.stringify(v === undefined ? null : v));
  F.numberOrNone = (v) => (F.filled(v) && !isNaN(Number(v)) ? Number(v) : undefined);
  /* A labelled field; `path` is where its value is in the JSON (the server's problems are shown under it). */
  F.field = (label, path, ...controls) => el("label.field", path ? { "data-path": path } : {}, el("span.field-label", { text: label }), ...controls);
  F.input = (value, onchange, testid, attrs) => el("input", Object.assign({ value: F.filled(value) ? value : "", "data-testid": testid,
    onchange: (e) => onchange(e.target.value.trim()) }, attrs || {}));

  /* The definition as sent and shown: only its own `keys`, without empty texts, lists and objects, except under
     the keys in `keep` (kept even empty) and in `raw` (written as they are: a webhook's body, a value). */
  F.definitionOf = function (keys, keep, raw) {
    const tidy = (value, key) => {
      if (raw.has(key)) return value;
      if (Array.isArray(value)) return value.map((v) => tidy(v)).filter((v) => v !== undefined);
      if (value && typeof value === "object") {
        const out = {};
        for (const [k, v] of Object.entries(value)) {
          const c = tidy(v, k);
          const empty = (Array.isArray(c) && !c.length) || (c && typeof c === "object" && !Array.isArray(c) && !Object.keys(c).length);
          if (c === undefined || c === null || c === "" || (empty && !keep.has(k) && !raw.has(k))) continue;
          out[k] = c;
        }
        return out;
      }
      return value;
    };
    return (spec) => {
      const own = {};
      for (const k of keys) if (spec[k] !== undefined) own[k] = spec[k];
      return tidy(own);
    };
  };

  /* The JSON view of a definition editor: `show()` writes `get()` into it; an edit that parses as an object
     goes to `set` (one that does not says why under it). */
  F.jsonView = function (attrs, errorTestid, get, set) {
    const node = el("textarea.code.journey-json", Object.assign({ spellcheck: "false", translate: "no" }, attrs));
    const error = el("div.error", { hidden: true, "data-testid": errorTestid || null });
    node.addEventListener("input", () => {
      let parsed;
      try { parsed = JSON.parse(node.value); } catch (err) { error.hidden = false; error.textContent = t("jedit.json_invalid") + " " + err.message; return; }
      error.hidden = true;
      set(parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {});
    });
    return { node, error, show: () => { node.value = JSON.stringify(get(), null, 2); error.hidden = true; } };
  };

  /* Clean a query for sending: empty filters and values dropped, display choices ($view) kept out. */
  F.clean = function (value) {
    if (Array.isArray(value)) return value.map(F.clean).filter((v) => v !== undefined);
    if (value && typeof value === "object") {
      if ("property" in value && "op" in value && !value.property) return undefined;
      const out = {};
      for (const [k, v] of Object.entries(value)) {
        if (k.startsWith("$")) continue;
        const c = F.clean(v);
        if (c === undefined || c === null || c === "") continue;
        if (Array.isArray(c) && c.length === 0 && k !== "series" && k !== "steps") continue;
        if (typeof c === "object" && !Array.isArray(c) && Object.keys(c).length === 0) continue;
        out[k] = c;
      }
      return out;
    }
    return value;
  };
})();
