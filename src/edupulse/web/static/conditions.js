/* The condition builder of segments, used wherever a condition on persons is written: the segment page, a
   tag's custom tiers and a journey's "if" step. A condition is one of several kinds (did an event, has a
   property, is in a segment, has a tag, received the awaited event), several combined with all / any. The
   builder edits a form state {combine, items}; `parse` reads a condition's JSON into it (null when the JSON is
   nested deeper than the form shows, e.g. "not" or an "or" inside an "and": then it is edited as JSON) and
   `json` writes it back, leaving out conditions not filled in yet.

   ctx: {cat, segments, tags, kinds: [...], prefix (test ids), journey (the journey grammar: segment
   membership, tags by value, "received"; else the segment grammar: tags with an operator), properties:
   "person" (segments) or "all" (event and person properties), path (where the condition is in the JSON,
   for the server's errors), ids: {combine, add} (test ids of the segment page)}. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields;
  const PERSON_OPS = ["eq", "neq", "contains", "in", "gt", "gte", "lt", "lte", "is_set", "is_not_set"];
  const COUNTS = ["at_least", "at_most", "exactly"];
  const NO_VALUE = ["is_set", "is_not_set"];
  const filled = (v) => v !== undefined && v !== null && v !== "";
  const firstEvent = (ctx) => (F.STAGES.order.find((n) => ctx.cat.events.some((e) => e.name === n)) || (ctx.cat.events[0] || {}).name || "");
  const valueOf = (op, text) => F.filterValue(op, filled(text) ? String(text) : "");
  const onlyKeys = (c, keys) => Object.keys(c).every((k) => keys.includes(k));

  /* A select of the given [value, words] options that keeps a value it does not list (shown as user data). */
  function keep(options, value, onchange, testid) {
    const known = options.some(([v]) => String(v) === String(value));
    const all = filled(value) && !known ? [[value, EP.userText(value)], ...options] : options;
    return F.select(all, value, onchange, testid);
  }
  const segmentOptions = (ctx) => ctx.segments.map((s) => [s.id, EP.userText(s.name)]);
  const tagOptions = (ctx) => ctx.tags.map((tag) => [tag.name, EP.userText(tag.name)]);

  /* Each kind: a blank item, its form state from JSON (null: not shown by the form), its JSON (null: not
     filled in) and its controls. */
  const KINDS = {
    event: {
      blank: (ctx) => ({ type: "event", event: firstEvent(ctx), count_op: "at_least", count: 1, days: 30, filters: [] }),
      parse: (c) => {
        if (!onlyKeys(c, ["event", "window", "filters", ...COUNTS]) || (c.window && !filled(c.window.last_days))) return null;
        const op = COUNTS.find((k) => filled(c[k]));
        return { type: "event", event: c.event, count_op: op || "at_least", count: op ? c[op] : "", days: c.window ? c.window.last_days : "",
          filters: JSON.parse(JSON.stringify(c.filters || [])) };
      },
      json: (s) => {
        if (!s.event) return null;
        const out = { event: s.event };
        if (filled(s.count) && !isNaN(s.count)) out[s.count_op] = Number(s.count);
        if (filled(s.days) && Number(s.days) > 0) out.window = { last_days: Number(s.days) };
        const filters = F.clean(s.filters || []);
        if (filters && filters.length) out.filters = filters;
        return out;
      },
      draw: (s, id, ctx, changed) => [F.eventSelect(ctx.cat, s.event, (v) => { s.event = v; changed(); }, false, id("event")),
        F.select(F.choices("segments.count", COUNTS), s.count_op, (v) => { s.count_op = v; changed(); }, id("count-op")),
        F.number(s.count, (v) => { s.count = v; changed(); }, { min: 0, style: "width:5em", "data-testid": id("count") }), el("span", { text: t("segments.times_in") }),
        F.number(s.days, (v) => { s.days = v; changed(); }, { min: 1, style: "width:5em", "data-testid": id("days") }), el("span", { text: t("segments.days") }),
        F.filters(ctx.cat, (s.filters = s.filters || []), changed, id("f"))],
    },
    property: {
      blank: () => ({ type: "property", property: "", op: "eq", value: "" }),
      parse: (c) => (onlyKeys(c, ["property", "op", "value"]) ? { type: "property", property: c.property, op: c.op || "eq", value: F.filterText(c) } : null),
      json: (s) => {
        if (!s.property) return null;
        const out = { property: s.property, op: s.op };
        const value = valueOf(s.op, s.value);
        if (value !== undefined) out.value = value;
        return out;
      },
      draw: (s, id, ctx, changed, redraw) => {
        // a journey reads the trigger event's and the person's properties; a segment the person's
        const cat = { properties: ctx.properties === "all" ? ctx.cat.properties : [], person_properties: ctx.cat.person_properties, groups: [] };
        const ops = ctx.properties === "all" ? F.OPS : PERSON_OPS;
        return [F.propertySelect(cat, s.property, (v) => { s.property = v; changed(); }, id("property"), { noGroupKeys: true }),
          F.select(F.choices("op", ops), s.op, (v) => { s.op = v; redraw(); changed(); }, id("op")),
          NO_VALUE.includes(s.op) ? "" : F.text(s.value, (v) => { s.value = v; changed(); }, { "data-testid": id("value"), style: "width:9em",
            placeholder: t("picker.value_hint." + (["in", "not_in"].includes(s.op) ? "list" : s.op === "between" ? "between" : "one")) })];
      },
    },
    segment: {
      blank: (ctx) => ({ type: "segment", segment: (ctx.segments[0] || {}).id, member: true }),
      parse: (c) => (onlyKeys(c, ["segment", "member"]) ? { type: "segment", segment: c.segment, member: c.member !== false } : null),
      json: (s, ctx) => {
        if (!filled(s.segment)) return null;
        const out = { segment: isNaN(Number(s.segment)) ? s.segment : Number(s.segment) };
        if (ctx.journey && !s.member) out.member = false;
        return out;
      },
      draw: (s, id, ctx, changed) => [ctx.journey ? F.select(F.choices("conditions.member", ["in", "out"]), s.member ? "in" : "out",
        (v) => { s.member = v === "in"; changed(); }, id("member")) : "",
      keep(segmentOptions(ctx), s.segment, (v) => { s.segment = v; changed(); }, id("segment"))],
    },
    tag: {
      blank: (ctx) => ({ type: "tag", tag: (ctx.tags[0] || {}).name || "", op: "eq", value: "", has: true }),
      parse: (c, ctx) => {
        if (ctx.journey) return onlyKeys(c, ["tag", "value", "has"]) ? { type: "tag", tag: c.tag, value: filled(c.value) ? c.value : "", has: c.has !== false } : null;
        if (!onlyKeys(c, ["tag", "op", "value"])) return null;
        return { type: "tag", tag: c.tag, op: c.op || (filled(c.value) ? "eq" : "is_set"), value: F.filterText(c) };
      },
      json: (s, ctx) => {
        if (!s.tag) return null;
        const out = { tag: s.tag };
        if (ctx.journey) {
          if (filled(s.value)) out.value = String(s.value);
          if (!s.has) out.has = false;
          return out;
        }
        out.op = s.op;
        const value = valueOf(s.op, s.value);
        if (value !== undefined) out.value = value;
        return out;
      },
      draw: (s, id, ctx, changed, redraw) => [keep(tagOptions(ctx), s.tag, (v) => { s.tag = v; changed(); }, id("tag")),
        ctx.journey ? F.select(F.choices("conditions.has", ["yes", "no"]), s.has ? "yes" : "no", (v) => { s.has = v === "yes"; changed(); }, id("has"))
          : F.select(F.choices("op", PERSON_OPS), s.op, (v) => { s.op = v; redraw(); changed(); }, id("op")),
        !ctx.journey && NO_VALUE.includes(s.op) ? "" : F.text(s.value, (v) => { s.value = v; changed(); }, { "data-testid": id("value"), style: "width:9em",
          placeholder: ctx.journey ? t("conditions.any_value") : t("picker.value_hint.one") })],
    },
    received: {
      blank: (ctx) => ({ type: "received", event: firstEvent(ctx) }),
      parse: (c) => (onlyKeys(c, ["received"]) ? { type: "received", event: c.received } : null),
      json: (s) => (s.event ? { received: s.event } : null),
      draw: (s, id, ctx, changed) => [F.eventSelect(ctx.cat, s.event, (v) => { s.event = v; changed(); }, false, id("event"))],
    },
  };
  const kindOf = (c) => ["event", "property", "segment", "tag", "received"].find((k) => c && typeof c === "object" && k in c);

  const C = (EP.conditions = {});
  C.blank = (kind, ctx) => KINDS[kind].blank(ctx);

  /* The form state of a condition (null: the form cannot show it). */
  C.parse = function (cond, ctx) {
    if (!cond || typeof cond !== "object" || !Object.keys(cond).length) return { combine: "and", items: [] };
    const combine = ["and", "or"].find((k) => Array.isArray(cond[k]) && Object.keys(cond).length === 1);
    const leaves = combine ? cond[combine] : [cond];
    const items = leaves.map((c) => {
      const kind = kindOf(c);
      return kind && ctx.kinds.includes(kind) ? KINDS[kind].parse(c, ctx) : null;
    });
    return items.every(Boolean) ? { combine: combine || "and", items: items } : null;
  };

  /* The condition JSON of a form state; null when no condition is filled in. */
  C.json = function (state, ctx) {
    const out = state.items.map((s) => KINDS[s.type].json(s, ctx)).filter(Boolean);
    if (!out.length) return null;
    return out.length === 1 ? out[0] : { [state.combine]: out };
  };

  /* The form of a state: "persons who meet all / any of these", a line per condition, "+ condition". */
  C.editor = function (state, changed, ctx) {
    const box = el("div.conditions", ctx.path ? { "data-path": ctx.path } : {});
    const ids = ctx.ids || {};
    const prefix = ctx.prefix || "cond";
    function draw() {
      const rows = state.items.map((c, i) => {
        const id = (name) => prefix + "-" + name + "-" + i;
        const kind = F.select(F.choices("conditions.type", ctx.kinds), c.type, (v) => {
          state.items[i] = KINDS[v].blank(ctx);
          draw(); changed();
        }, id("type"));
        const path = ctx.path ? (state.items.length > 1 ? ctx.path + "." + state.combine + "." + i : ctx.path) : null;
        return el("div.event-item.inline", path ? { "data-path": path } : {}, kind, ...KINDS[c.type].draw(c, id, ctx, changed, draw),
          state.items.length > 1 || ctx.allowEmpty ? el("button.link.danger", { type: "button", text: "×", title: t("common.remove"),
            "data-testid": id("remove"), onclick: () => { state.items.splice(i, 1); draw(); changed(); } }) : "");
      });
      box.replaceChildren(el("div.field", {}, el("span.field-label", { text: ctx.label || t("segments.conditions") }),
        F.select(F.choices("segments.combine", ["and", "or"]), state.combine, (v) => { state.combine = v; changed(); }, ids.combine || prefix + "-combine")),
      ...rows, el("button.link", { type: "button", text: t("segments.add_condition"), "data-testid": ids.add || prefix + "-add",
        onclick: () => { state.items.push(KINDS[ctx.kinds.includes("property") ? "property" : ctx.kinds[0]].blank(ctx)); draw(); } }));
    }
    draw();
    return box;
  };

  /* The lists the pickers offer: the data catalogue, saved segments and tags (each loaded once per page). */
  C.lists = async function () {
    if (!C._lists) C._lists = Promise.all([EP.catalogue(),
      EP.api("GET", "/api/v1/segments").then((r) => r.segments || []).catch(() => []),
      EP.api("GET", "/api/v1/tags").then((r) => r.tags || []).catch(() => [])])
      .then(([cat, segments, tags]) => ({ cat: cat, segments: segments, tags: tags }));
    return C._lists;
  };

  // the server's errors next to the fields they name ---------------------------------------------------
  /* "steps.1.wait.value: reason; trigger.event: reason" as [[path, reason]]. */
  C.problems = function (message) {
    return String(message || "").split(/;\s+(?=[A-Za-z_][\w]*(?:\.[\w-]+)*:\s)/).map((part) => {
      const m = /^([A-Za-z_][\w]*(?:\.[\w-]+)*):\s+([\s\S]*)$/.exec(part.trim());
      return m ? [m[1], m[2]] : [null, part.trim()];
    }).filter(([, reason]) => reason);
  };
  /* Whether the field path `mine` names the error path `theirs`: its parts in order, the parts it lacks
     being only the names of union members the server puts into the location (a tag's type, a condition's
     kind). */
  function names(mine, theirs) {
    let j = 0;
    for (const part of theirs) {
      if (j === mine.length) return true;
      if (part === mine[j]) j++;
      else if (j === 0 || /^\d+$/.test(part)) return false;
    }
    return j === mine.length;
  }
  /* Shows each problem of a message under the field whose data-path names it; returns the problems no
     field names (for the form's general error line). */
  C.showProblems = function (root, message) {
    root.querySelectorAll(".field-error").forEach((n) => n.remove());
    const left = [];
    const fields = [...root.querySelectorAll("[data-path]")].map((node) => [node, node.dataset.path.split(".")]);
    for (const [path, reason] of C.problems(message)) {
      const theirs = path ? path.split(".") : [];
      let best = null;
      for (const [node, mine] of fields)
        if (theirs.length && names(mine, theirs) && (!best || mine.length > best[1].length)) best = [node, mine];
      if (!best) { left.push(path ? path + ": " + reason : reason); continue; }
      const note = el("div.field-error", { role: "alert", "data-error-for": best[0].dataset.path, text: reason });
      best[0].after(note);
    }
    return left.join("; ");
  };
})();
