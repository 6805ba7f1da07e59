/* The segment builder: conditions on what persons did (events, with counts and a window) and on their
   properties, combined with all / any; the number of members is counted live while the definition changes. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields, P = EP.pages;
  const $ = (id) => document.getElementById(id);
  const PERSON_OPS = ["eq", "neq", "contains", "in", "gt", "gte", "lt", "lte", "is_set", "is_not_set"];

  /* The definition the builder edits: {combine: and|or, items: [{type: event|property|segment, ...}]}. */
  function definition(state) {
    const conditions = state.items.map((c) => {
      if (c.type === "event") {
        const out = { event: c.event };
        out[c.count_op] = Number(c.count);
        if (c.days) out.window = { last_days: Number(c.days) };
        return out;
      }
      if (c.type === "segment") return { segment: Number(c.segment) };
      const value = ["is_set", "is_not_set"].includes(c.op) ? undefined : c.op === "in" ? String(c.value).split(",").map((s) => s.trim())
        : ["gt", "gte", "lt", "lte"].includes(c.op) ? Number(c.value) : c.value;
      const out = { property: c.property, op: c.op };
      if (value !== undefined) out.value = value;
      return out;
    }).filter((c) => !("event" in c && !c.event) && !("property" in c && !c.property) && !("segment" in c && !c.segment));
    if (!conditions.length) return null;
    return { condition: conditions.length === 1 ? conditions[0] : { [state.combine]: conditions } };
  }

  P.segments = async function (data) {
    const cat = await EP.catalogue();
    const state = { combine: "and", items: [{ type: "event", event: F.STAGES.order.find((n) => cat.events.some((e) => e.name === n)) || (cat.events[0] || {}).name, count_op: "at_least", count: 1, days: 30 }] };
    let saved = [];
    let counter = 0;
    const count = EP.debounce(async () => {
      const def = definition(state);
      const mine = ++counter;
      if (!def) { $("segment-count").textContent = "—"; return; }
      $("segment-count").textContent = t("common.loading");
      try {
        const found = await EP.api("POST", "/api/v1/query", { kind: "segments", definition: def, limit: 0 });
        if (mine !== counter) return;
        $("segment-count").textContent = t("people.count").replace("{n}", EP.fmt(found.total));
        $("segment-count").dataset.total = String(found.total);
        EP.showError($("error"), "");
      } catch (err) { if (mine === counter) { $("segment-count").textContent = "—"; EP.showError($("error"), err.message); } }
      document.body.dataset.counted = String(mine);
    }, 300);
    const box = $("segment-conditions");
    const changed = () => count();
    function draw() {
      const rows = state.items.map((c, i) => {
        const kind = F.select(F.choices("segments.type", ["event", "property", "segment"]), c.type, (v) => {
          state.items[i] = v === "event" ? { type: "event", event: (cat.events[0] || {}).name, count_op: "at_least", count: 1, days: 30 }
            : v === "property" ? { type: "property", property: "", op: "eq", value: "" } : { type: "segment", segment: (saved[0] || {}).id };
          draw(); changed();
        }, "cond-type-" + i);
        let body;
        if (c.type === "event") body = [F.eventSelect(cat, c.event, (v) => { c.event = v; changed(); }, false, "cond-event-" + i),
          F.select(F.choices("segments.count", ["at_least", "at_most", "exactly"]), c.count_op, (v) => { c.count_op = v; changed(); }, "cond-count-op-" + i),
          F.number(c.count, (v) => { c.count = v; changed(); }, { min: 0, style: "width:5em", "data-testid": "cond-count-" + i }), el("span", { text: t("segments.times_in") }),
          F.number(c.days, (v) => { c.days = v; changed(); }, { min: 1, style: "width:5em", "data-testid": "cond-days-" + i }), el("span", { text: t("segments.days") })];
        else if (c.type === "property") body = [F.propertySelect({ properties: [], person_properties: cat.person_properties, groups: [] }, c.property,
          (v) => { c.property = v; changed(); }, "cond-property-" + i),
          F.select(F.choices("op", PERSON_OPS), c.op, (v) => { c.op = v; draw(); changed(); }, "cond-op-" + i),
          ["is_set", "is_not_set"].includes(c.op) ? "" : F.text(c.value, (v) => { c.value = v; changed(); }, { "data-testid": "cond-value-" + i, style: "width:9em" })];
        else body = [F.select(saved.map((s) => [s.id, s.name]), c.segment, (v) => { c.segment = v; changed(); }, "cond-segment-" + i)];
        return el("div.event-item.inline", {}, kind, ...body, state.items.length > 1 ? el("button.link.danger", { type: "button", text: "×", title: t("common.remove"),
          onclick: () => { state.items.splice(i, 1); draw(); changed(); } }) : "");
      });
      box.replaceChildren(el("div.field", {}, el("span.field-label", { text: t("segments.conditions") }),
        F.select(F.choices("segments.combine", ["and", "or"]), state.combine, (v) => { state.combine = v; changed(); }, "combine")),
      ...rows, el("button.link", { type: "button", text: t("segments.add_condition"), "data-testid": "add-condition",
        onclick: () => { state.items.push({ type: "property", property: "", op: "eq", value: "" }); draw(); } }));
    }
    async function list() {
      saved = (await EP.api("GET", "/api/v1/segments")).segments || [];
      $("segment-list").replaceChildren(saved.length ? EP.table([t("segments.name"), t("segments.description"), t("segments.members"), ""],
        saved.map((s) => [el("a", { href: "/people?segment=" + s.id, translate: "no", text: EP.userText(s.name) }), { text: s.description || "", user: true },
          el("button.link", { type: "button", text: t("segments.count"), onclick: async (e) => {
            const found = await EP.api("POST", "/api/v1/query", { kind: "segments", segment: s.id, limit: 0 });
            e.target.replaceWith(el("span", { text: t("people.count").replace("{n}", EP.fmt(found.total)) }));
          } }),
          data.can_save ? el("button.link.danger", { type: "button", text: t("reports.delete"), onclick: async () => {
            try { await EP.api("DELETE", "/api/v1/segments/" + s.id); await list(); } catch (err) { EP.showError($("error"), err.message); }
          } }) : ""]), "grid") : el("div.empty", { text: t("segments.none") }));
    }
    $("segment-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const def = definition(state);
      if (!def) return EP.showError($("error"), t("segments.needs_condition"));
      try {
        await EP.api("POST", "/api/v1/segments", { name: $("segment-name").value, description: $("segment-description").value, definition: def });
        EP.toast(t("builder.saved"));
        await list();
        document.body.dataset.segmentSaved = $("segment-name").value;
      } catch (err) { EP.showError($("error"), err.message); }
    });
    await list();
    draw();
    count();
    await new Promise((resolve) => { const wait = () => (document.body.dataset.counted ? resolve() : setTimeout(wait, 50)); wait(); });
  };
})();
