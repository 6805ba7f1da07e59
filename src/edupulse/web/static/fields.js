/* Form widgets of the analysis builder, bound to the query object they edit. Each calls `changed()` after
   an edit so the builder can refresh the query JSON. Pickers are fed by the data catalogue. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t;
  const F = (EP.fields = {});
  const OPS = ["eq", "neq", "contains", "not_contains", "regex", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"];

  F.row = (label, ...controls) => el("label.field", {}, el("span.field-label", { text: label }), ...controls);

  F.eventSelect = function (cat, value, onchange, allowAny, testid) {
    const options = [];
    if (allowAny) options.push(el("option", { value: "", text: t("builder.any_event") }));
    const names = cat.events.map((e) => e.name);
    if (value && !names.includes(value)) names.unshift(value);
    for (const name of names) {
      const info = cat.events.find((e) => e.name === name);
      options.push(el("option", { value: name, text: info ? name + "  (" + EP.fmt(info.volume) + ")" : name,
        selected: name === value }));
    }
    return el("select.event-picker", { "data-testid": testid, onchange: (e) => onchange(e.target.value || null) }, options);
  };

  F.propertyList = function (cat) {
    let list = document.getElementById("property-names");
    if (!list) {
      list = el("datalist", { id: "property-names" },
        cat.properties.map((p) => el("option", { value: p.name })),
        cat.person_properties.map((p) => el("option", { value: "person." + p.name })));
      document.body.append(list);
    }
    return "property-names";
  };

  F.propertyInput = function (cat, value, onchange, testid) {
    return el("input.property-picker", { list: F.propertyList(cat), value: value || "", placeholder: t("builder.property"),
      "data-testid": testid, onchange: (e) => onchange(e.target.value.trim() || null) });
  };

  F.select = function (options, value, onchange, testid) {
    return el("select", { "data-testid": testid, onchange: (e) => onchange(e.target.value) },
      options.map(([v, label]) => el("option", { value: v, text: label, selected: String(v) === String(value) })));
  };

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
    return Array.isArray(f.value) ? f.value.join(",") : f.value === undefined ? "" : String(f.value);
  }

  /* A list of property conditions (all must hold), edited in place. */
  F.filters = function (cat, list, changed, prefix) {
    const box = el("div.filters");
    const redraw = () => {
      box.replaceChildren(...list.map((f, i) => {
        const update = () => {
          const text = valueInput.value;
          const value = filterValue(f.op || "eq", text);
          if (value === undefined) delete f.value; else f.value = value;
          changed();
        };
        const valueInput = el("input.filter-value", { value: filterText(f), placeholder: "value", "data-testid": prefix + "-filter-value-" + i, onchange: update });
        return el("div.filter-row", {},
          F.propertyInput(cat, f.property, (v) => { f.property = v; changed(); }, prefix + "-filter-property-" + i),
          F.select(OPS.map((o) => [o, o]), f.op || "eq", (v) => { f.op = v; update(); }, prefix + "-filter-op-" + i),
          valueInput,
          el("button.link.danger", { type: "button", text: "×", onclick: () => { list.splice(i, 1); redraw(); changed(); } }));
      }), el("button.link", { type: "button", text: t("builder.add_filter"), "data-testid": prefix + "-add-filter",
        onclick: () => { list.push({ property: "", op: "eq", value: "" }); redraw(); } }));
    };
    redraw();
    return box;
  };

  F.dateRange = function (q, changed) {
    q.date_range = q.date_range || {};
    const dr = q.date_range;
    const set = (k) => (v) => { if (v) dr[k] = v; else delete dr[k]; changed(); };
    return el("div.inline", {},
      F.row(t("builder.date_from"), F.text(dr.date_from, set("date_from"), { size: 11, placeholder: "-7d", "data-testid": "date-from" })),
      F.row(t("builder.date_to"), F.text(dr.date_to, set("date_to"), { size: 11, placeholder: "today", "data-testid": "date-to" })));
  };

  F.granularity = function (q, changed) {
    return F.row(t("builder.granularity"), F.select(
      ["minute", "hour", "day", "week", "month"].map((g) => [g, g]), q.granularity || "day",
      (v) => { q.granularity = v; changed(); }, "granularity"));
  };

  F.breakdown = function (cat, q, changed) {
    const current = q.breakdown && q.breakdown.properties ? q.breakdown.properties[0] : "";
    return F.row(t("builder.breakdown"), F.propertyInput(cat, current, (v) => {
      if (v) q.breakdown = { properties: [v], limit: (q.breakdown && q.breakdown.limit) || 10 };
      else delete q.breakdown;
      changed();
    }, "breakdown"));
  };

  /* Clean a query for sending: empty filters and values dropped. */
  F.clean = function (value) {
    if (Array.isArray(value)) return value.map(F.clean).filter((v) => v !== undefined);
    if (value && typeof value === "object") {
      if ("property" in value && "op" in value && !value.property) return undefined;
      const out = {};
      for (const [k, v] of Object.entries(value)) {
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
