/* The journey editor: a journey's definition as forms a person fills without writing JSON (the trigger, the
   steps as a vertical flow of cards with their branches nested, the holdout, caps, goal and guard rails),
   and the same definition as JSON beside them. The JSON is the state: each form edit changes it and rewrites
   the JSON view; an edit of the JSON view (when it parses) redraws the forms. The reach of the trigger now
   and the server's checks come from /api/v1/journeys/preview as the definition changes; each problem the
   server names is shown under the field it names (data-path on the fields, conditions.js). */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields, C = EP.conditions;
  const UNITS = ["minute", "hour", "day", "week"];
  const ACTIONS = ["webhook", "email", "dingtalk", "wecom", "task", "set_property", "set_tag"];
  const STEP_KINDS = ["wait", "if", "split", ...ACTIONS, "exit"];
  const SPEC_KEYS = ["name", "description", "trigger", "steps", "holdout", "goal", "exit_on", "caps", "quiet_hours", "entry_limit", "language"];
  const RAW = new Set(["body", "value"]);  // values written as they are (a webhook's body template, a property value)
  const { filled, clone, numberOrNone, field, input } = F;
  const definition = F.definitionOf(SPEC_KEYS, new Set(["steps"]), RAW);  // a journey's steps are kept even while empty
  const keep = (options, value, onchange, testid) => {
    const known = options.some(([v]) => String(v) === String(value));
    return F.select(filled(value) && !known ? [[value, EP.userText(value)], ...options] : options, value, onchange, testid);
  };

  EP.journeyEditor = async function (root, initial, opts) {
    const lists = await C.lists();
    const channels = await EP.api("GET", "/api/v1/journey-channels").then((r) => r.channels || []).catch(() => []);
    const cat = lists.cat;
    const eventProps = { properties: cat.properties, person_properties: [], groups: [] };  // a trigger filters its event
    const firstEvent = (stage) => F.STAGES[stage || "order"].find((n) => cat.events.some((e) => e.name === n)) || (cat.events[0] || {}).name || "";
    let spec = definition(clone(initial));
    const form = el("div.journey-form");
    const view = F.jsonView({ id: "journey-json", rows: 24, "data-testid": "journey-json" }, "journey-json-error",
      () => definition(spec), (parsed) => { spec = parsed; draw(); preview(); });
    const json = view.node, jsonError = view.error, showJson = view.show;
    const reach = el("strong", { id: "journey-reach", "data-testid": "journey-reach", text: "—" });
    const general = opts.errorBox;
    let previewing = 0;

    const preview = EP.debounce(async () => {
      const mine = ++previewing;
      try {
        const found = await EP.api("POST", "/api/v1/journeys/preview", definition(spec));
        if (mine !== previewing) return;
        reach.textContent = EP.fmt(found.persons) + " " + t("journeys.reach." + found.basis);
        C.showProblems(form, "");
        EP.showError(general, "");
      } catch (err) {
        if (mine !== previewing) return;
        reach.textContent = "—";
        EP.showError(general, C.showProblems(form, err.message));
      }
      root.dataset.previewed = String(mine);
    }, 350);
    const changed = () => { showJson(); preview(); };

    // pickers ---------------------------------------------------------------------------------------
    const eventPick = (value, onchange, testid) => F.eventSelect(cat, value, onchange, false, testid);
    const segmentPick = (value, onchange, testid) => keep(lists.segments.map((s) => [s.id, EP.userText(s.name)]), value,
      (v) => onchange(isNaN(Number(v)) ? v : Number(v)), testid);
    const tagPick = (value, onchange, testid) => keep([["", t("jedit.choose_tag")], ...lists.tags.map((g) => [g.name, EP.userText(g.name)])], value, onchange, testid);
    // a set_tag step sets values by hand: only uploaded person tags take them (computed tags are their rule's)
    const settable = lists.tags.filter((g) => (g.definition || {}).type === "uploaded" && (g.unit || "person") === "person");
    const settablePick = (value, onchange, testid) => keep([["", t("jedit.choose_tag")], ...settable.map((g) => [g.name, EP.userText(g.name)])], value, onchange, testid);
    const channelPick = (kind, value, onchange, testid, optional) => {
      const mine = channels.filter((c) => c.kind === kind).map((c) => [c.name, EP.userText(c.name)]);
      return keep([["", optional ? t("jedit.no_channel") : t("jedit.choose_channel")], ...mine], value, onchange, testid);
    };
    const duration = (holder, key, path, testid, optional) => {
      const d = holder[key] || {};
      const write = (value, unit) => {
        if (optional && !filled(value)) delete holder[key];
        else holder[key] = { value: numberOrNone(value), unit: unit || "day" };
        changed();
      };
      let unit = d.unit || "day";
      const count = el("input", { type: "number", min: 1, style: "width:5em", value: filled(d.value) ? d.value : "", "data-testid": testid + "-value",
        placeholder: optional ? t("jedit.none") : null, onchange: (e) => write(e.target.value, unit) });
      return el("span.inline", { "data-path": path }, count, F.select(F.choices("unit", UNITS), unit, (v) => { unit = v; write(count.value, v); }, testid + "-unit"));
    };
    /* A message text in Chinese and English ({"zh": ..., "en": ...}); a plain text shows in both. */
    const texts = (holder, key, path, testid, multiline) => {
      const v = holder[key];
      const now = typeof v === "string" ? { zh: v, en: v } : Object.assign({}, v || {});
      const write = (lang, text) => {
        now[lang] = text;
        const out = {};
        if (filled(now.zh)) out.zh = now.zh;
        if (filled(now.en)) out.en = now.en;
        holder[key] = out;
        changed();
      };
      const one = (lang) => el(multiline ? "textarea" : "input", { value: now[lang] || "", rows: multiline ? 3 : null, "data-testid": testid + "-" + lang,
        placeholder: t("jedit.lang." + lang), onchange: (e) => write(lang, e.target.value) });
      return el("div.texts", { "data-path": path }, one("zh"), one("en"));
    };

    // the trigger -----------------------------------------------------------------------------------
    const TRIGGERS = ["event", "not_followed", "schedule", "tag_entered", "tag_left", "segment_entered", "segment_left"];
    const triggerKind = (tr) => {
      if (!tr || typeof tr !== "object") return "event";
      if (tr.schedule) return "schedule";
      if ("event" in tr) return tr.not_followed_by ? "not_followed" : "event";
      return TRIGGERS.find((k) => k in tr) || "event";
    };
    const blankTrigger = (kind, old) => {
      const event = old && old.event ? old.event : firstEvent();
      if (kind === "event") return { event: event, filters: (old && old.filters) || [] };
      if (kind === "not_followed") return { event: event, filters: (old && old.filters) || [],
        not_followed_by: { event: firstEvent("learning"), within: { value: 24, unit: "hour" } } };
      if (kind === "schedule") return { schedule: { every: "day", at: "09:00" }, audience: { segment: (lists.segments[0] || {}).id } };
      if (kind.startsWith("tag_")) return { [kind]: { tag: (lists.tags[0] || {}).name || "" } };
      return { [kind]: (lists.segments[0] || {}).id };
    };
    function triggerForm() {
      const tr = (spec.trigger = spec.trigger && typeof spec.trigger === "object" ? spec.trigger : blankTrigger("event"));
      const kind = triggerKind(tr);
      const rows = [field(t("jedit.trigger_kind"), "trigger", F.select(F.choices("jedit.trigger", TRIGGERS), kind, (v) => {
        spec.trigger = blankTrigger(v, tr); draw(); changed();
      }, "trigger-kind"))];
      if (kind === "event" || kind === "not_followed") {
        rows.push(field(t("jedit.event"), "trigger.event", eventPick(tr.event, (v) => { tr.event = v; changed(); }, "trigger-event")),
          el("div.field", { "data-path": "trigger.filters" }, el("span.field-label", { text: t("jedit.event_filters") }),
            F.filters(eventProps, (tr.filters = tr.filters || []), changed, "trigger")));
        if (kind === "not_followed") {
          const nf = (tr.not_followed_by = tr.not_followed_by || {});
          rows.push(field(t("jedit.not_followed_by"), "trigger.not_followed_by.event", eventPick(nf.event, (v) => { nf.event = v; changed(); }, "trigger-followed-event")),
            field(t("jedit.within"), "trigger.not_followed_by.within", duration(nf, "within", "trigger.not_followed_by.within", "trigger-within")));
        }
      } else if (kind === "schedule") {
        const s = (tr.schedule = tr.schedule || {});
        const audience = (tr.audience = tr.audience || {});
        rows.push(el("div.inline", {}, field(t("jedit.every"), "trigger.schedule.every", F.select(F.choices("jedit.every", ["once", "day", "week"]), s.every || "day", (v) => {
          s.every = v;
          if (v !== "once") delete s.date;
          if (v !== "week") delete s.weekday; else s.weekday = s.weekday || "mon";
          draw(); changed();
        }, "schedule-every")),
        s.every === "once" ? field(t("jedit.date"), "trigger.schedule.date", input(s.date, (v) => { s.date = v; changed(); }, "schedule-date", { type: "date" })) : "",
        s.every === "week" ? field(t("jedit.weekday"), "trigger.schedule.weekday", F.select(F.choices("jedit.weekday", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
          s.weekday || "mon", (v) => { s.weekday = v; changed(); }, "schedule-weekday")) : "",
        field(t("jedit.at"), "trigger.schedule.at", input(s.at || "09:00", (v) => { s.at = v; changed(); }, "schedule-at", { type: "time" }))));
        const byTag = audience.tag !== undefined;
        rows.push(el("div.inline", { "data-path": "trigger.audience" }, field(t("jedit.audience"), null, F.select(F.choices("jedit.audience", ["segment", "tag"]), byTag ? "tag" : "segment", (v) => {
          tr.audience = v === "tag" ? { tag: (lists.tags[0] || {}).name || "" } : { segment: (lists.segments[0] || {}).id };
          draw(); changed();
        }, "audience-kind")),
        byTag ? [field(t("jedit.tag"), "trigger.audience.tag", tagPick(audience.tag, (v) => { audience.tag = v; changed(); }, "audience-tag")),
          field(t("jedit.tag_value"), "trigger.audience.value", input(audience.value, (v) => { if (v) audience.value = v; else delete audience.value; changed(); },
            "audience-value", { placeholder: t("conditions.any_value") }))]
          : field(t("jedit.segment"), "trigger.audience.segment", segmentPick(audience.segment, (v) => { audience.segment = v; changed(); }, "audience-segment"))));
      } else if (kind.startsWith("tag_")) {
        const ref = (tr[kind] = tr[kind] || {});
        rows.push(el("div.inline", {}, field(t("jedit.tag"), "trigger." + kind + ".tag", tagPick(ref.tag, (v) => { ref.tag = v; changed(); }, "trigger-tag")),
          field(t("jedit.tag_value"), "trigger." + kind + ".value", input(ref.value, (v) => { if (v) ref.value = v; else delete ref.value; changed(); },
            "trigger-tag-value", { placeholder: t("conditions.any_value") }))));
      } else {
        rows.push(field(t("jedit.segment"), "trigger." + kind, segmentPick(tr[kind], (v) => { tr[kind] = v; changed(); }, "trigger-segment")));
      }
      return el("section.card.jedit-trigger", {}, el("h3", { text: t("jedit.trigger") }), ...rows);
    }

    // the steps -------------------------------------------------------------------------------------
    const stepKind = (step) => (!step || typeof step !== "object" ? "exit" : step.wait ? "wait" : "if" in step ? "if" : step.split ? "split"
      : step.action ? step.action : "exit");
    const blankStep = (kind) => {
      if (kind === "wait") return { wait: { value: 1, unit: "day" } };
      if (kind === "if") return { if: {}, then: [], else: [] };
      if (kind === "split") return { split: [{ weight: 0.5, steps: [] }, { weight: 0.5, steps: [] }] };
      if (kind === "webhook") return { action: "webhook", url: "", body: { login_id: "{{person.login_id}}" } };
      if (kind === "email") return { action: "email", channel: (channels.find((c) => c.kind === "smtp") || {}).name || "", to: "{{person.email}}", subject: {}, text: {} };
      if (kind === "dingtalk" || kind === "wecom") return { action: kind, channel: (channels.find((c) => c.kind === kind) || {}).name || "", text: {} };
      if (kind === "task") return { action: "task", title: {}, assign: "round_robin" };
      if (kind === "set_property") return { action: "set_property", property: "", value: "" };
      if (kind === "set_tag") return { action: "set_tag", tag: "", value: "" };
      return { exit: true };
    };

    function waitForm(w, path, id) {
      const mode = w.event !== undefined ? "event" : w.until !== undefined ? "until" : "duration";
      const rows = [field(t("jedit.wait_mode"), path, F.select(F.choices("jedit.wait", ["duration", "until", "event"]), mode, (v) => {
        for (const k of Object.keys(w)) delete w[k];
        if (v === "duration") Object.assign(w, { value: 1, unit: "day" });
        else if (v === "until") Object.assign(w, { until: "09:00" });
        else Object.assign(w, { event: firstEvent(), max: { value: 3, unit: "day" } });
        draw(); changed();
      }, id("wait-mode")))];
      if (mode === "duration") rows.push(field(t("jedit.wait_for"), path, el("span.inline", {},
        el("input", { type: "number", min: 1, style: "width:5em", value: filled(w.value) ? w.value : "", "data-testid": id("wait-value"), "data-path": path + ".value",
          onchange: (e) => { w.value = numberOrNone(e.target.value); changed(); } }),
        F.select(F.choices("unit", UNITS), w.unit || "day", (v) => { w.unit = v; changed(); }, id("wait-unit")))));
      else if (mode === "until") rows.push(el("div.inline", {}, field(t("jedit.until"), path + ".until", input(w.until, (v) => { w.until = v; changed(); }, id("wait-until"), { type: "time" })),
        field(t("jedit.timezone"), path + ".timezone", F.select(F.choices("jedit.timezone", ["project", "recipient"]), w.timezone || "project",
          (v) => { if (v === "project") delete w.timezone; else w.timezone = v; changed(); }, id("wait-timezone")))));
      else rows.push(field(t("jedit.wait_event"), path + ".event", eventPick(w.event, (v) => { w.event = v; changed(); }, id("wait-event"))),
        field(t("jedit.at_most"), path + ".max", duration(w, "max", path + ".max", id("wait-max"))));
      return rows;
    }

    function ifForm(step, path, id) {
      const ctx = Object.assign({}, lists, { kinds: ["property", "segment", "tag", "received"], journey: true, properties: "all",
        prefix: id("cond"), path: path + ".if", label: t("jedit.if_label") });
      const state = C.parse(step.if, ctx);
      const rows = [];
      if (!state) rows.push(el("p.muted", { "data-path": path + ".if", text: t("conditions.json_only") }));
      else {
        if (!state.items.length) state.items.push(C.blank("property", ctx));
        rows.push(C.editor(state, () => { step.if = C.json(state, ctx) || {}; changed(); }, ctx));
      }
      for (const [key, words] of [["then", t("jedit.then")], ["else", t("jedit.else")]])
        rows.push(el("div.jedit-branch", {}, el("div.jedit-branch-title", { text: words }), stepList((step[key] = step[key] || []), path + "." + key)));
      return rows;
    }

    function splitForm(step, path, id) {
      const arms = step.split;
      const rows = arms.map((arm, j) => el("div.jedit-branch", { "data-path": path + ".split." + j },
        el("div.inline.jedit-branch-title", {}, el("span", { text: t("jedit.arm") + " " + (j + 1) }),
          el("input", { type: "number", min: 1, max: 100, style: "width:5em", value: filled(arm.weight) ? Math.round(arm.weight * 10000) / 100 : "",
            "data-testid": id("arm-" + j + "-weight"), onchange: (e) => { arm.weight = numberOrNone(e.target.value) / 100; changed(); } }),
          el("span", { text: "%" }),
          arms.length > 2 ? el("button.link.danger", { type: "button", text: t("jedit.remove_arm"), "data-testid": id("arm-" + j + "-remove"),
            onclick: () => { arms.splice(j, 1); draw(); changed(); } }) : ""),
        stepList((arm.steps = arm.steps || []), path + ".split." + j + ".steps")));
      rows.push(el("button.link", { type: "button", text: t("jedit.add_arm"), "data-testid": id("add-arm"), onclick: () => {
        const share = Math.round(10000 / (arms.length + 1)) / 10000;
        arms.forEach((a) => (a.weight = share));
        arms.push({ weight: Math.round((1 - share * arms.length) * 10000) / 10000, steps: [] });
        draw(); changed();
      } }));
      return rows;
    }

    function actionForm(step, path, id) {
      const set = (key) => (v) => { if (filled(v)) step[key] = v; else delete step[key]; changed(); };
      const a = step.action;
      if (a === "webhook") {
        const bodyError = el("div.field-error", { hidden: true });
        return [field(t("jedit.url"), path + ".url", input(step.url, set("url"), id("url"), { placeholder: t("jedit.url_hint"), style: "width:100%" })),
          field(t("jedit.sign_with"), path + ".channel", channelPick("webhook", step.channel, set("channel"), id("channel"), true)),
          field(t("jedit.body"), path + ".body", el("textarea.code", { rows: 5, translate: "no", spellcheck: "false", "data-testid": id("body"),
            value: JSON.stringify(step.body === undefined ? {} : step.body, null, 2), onchange: (e) => {
              try { step.body = JSON.parse(e.target.value); bodyError.hidden = true; changed(); }
              catch (err) { bodyError.hidden = false; bodyError.textContent = t("jedit.json_invalid") + " " + err.message; }
            } }), bodyError, el("small.muted", { text: t("jedit.template_help") }))];
      }
      if (a === "email") return [field(t("jedit.channel"), path + ".channel", channelPick("smtp", step.channel, set("channel"), id("channel"))),
        field(t("jedit.to"), path + ".to", input(step.to, set("to"), id("to"))),
        field(t("jedit.subject"), path + ".subject", texts(step, "subject", path + ".subject", id("subject"))),
        field(t("jedit.text"), path + ".text", texts(step, "text", path + ".text", id("text"), true)),
        el("small.muted", { text: t("jedit.template_help") })];
      if (a === "dingtalk" || a === "wecom") return [field(t("jedit.channel"), path + ".channel", channelPick(a, step.channel, set("channel"), id("channel"))),
        field(t("jedit.format"), path + ".format", F.select(F.choices("jedit.format", ["text", "markdown"]), step.format || "text",
          (v) => { if (v === "text") delete step.format; else step.format = v; draw(); changed(); }, id("format"))),
        step.format === "markdown" ? field(t("jedit.title"), path + ".title", texts(step, "title", path + ".title", id("title"))) : "",
        field(t("jedit.text"), path + ".text", texts(step, "text", path + ".text", id("text"), true)),
        field(t("jedit.at_mobiles"), path + ".at_mobiles", input((step.at_mobiles || []).join(", "), (v) => {
          step.at_mobiles = v.split(",").map((s) => s.trim()).filter(Boolean); changed();
        }, id("at-mobiles"), { placeholder: t("jedit.at_mobiles_hint") })),
        el("small.muted", { text: t("jedit.template_help") })];
      if (a === "task") return [field(t("jedit.task_title"), path + ".title", texts(step, "title", path + ".title", id("title"))),
        field(t("jedit.note"), path + ".note", texts(step, "note", path + ".note", id("note"), true)),
        field(t("jedit.assign"), path + ".assign", F.select(F.choices("jedit.assign", ["round_robin", "capacity"]), step.assign || "round_robin",
          (v) => { step.assign = v; changed(); }, id("assign"))),
        field(t("jedit.advisors"), path + ".advisors", input((step.advisors || []).join(", "), (v) => {
          step.advisors = v.split(",").map((s) => s.trim()).filter(Boolean); changed();
        }, id("advisors"), { placeholder: t("jedit.advisors_hint") })),
        field(t("jedit.due"), path + ".due", duration(step, "due", path + ".due", id("due"), true))];
      if (a === "set_property") {
        const known = el("datalist", { id: id("properties") }, cat.person_properties.map((p) => el("option", { value: p.name })));
        return [field(t("jedit.property"), path + ".property", input(step.property, set("property"), id("property"), { list: id("properties") }), known),
          field(t("jedit.value"), path + ".value", input(typeof step.value === "string" ? step.value : JSON.stringify(step.value === undefined ? "" : step.value),
            (v) => { step.value = v; changed(); }, id("value")))];
      }
      if (a === "set_tag") return [field(t("jedit.tag"), path + ".tag", settablePick(step.tag, set("tag"), id("tag")),
        settable.length ? null : el("p.muted", { text: t("jedit.no_settable_tags"), "data-testid": id("no-tags") })),
        field(t("jedit.tag_value"), path + ".value", input(step.value === undefined || step.value === null ? "" : String(step.value),
          set("value"), id("value"), { placeholder: t("jedit.tag_value_hint") }))];
      return [el("p.muted", { text: t("jedit.unknown_action") })];
    }

    function stepCard(list, i, prefix) {
      const step = list[i];
      const path = prefix + "." + i;
      const short = path.replace(/^steps\./, "").replace(/\.split\.(\d+)\.steps\./g, ".$1.");
      const id = (name) => "step-" + short + "-" + name;
      const kind = stepKind(step);
      const move = (to) => { list.splice(to, 0, list.splice(i, 1)[0]); draw(); changed(); };
      const head = el("div.jedit-step-head", { "data-path": path },
        el("span.step-path", { translate: "no", text: EP.userText(short) }),
        el("strong", { text: t("jedit.kind." + kind) }),
        el("span.jedit-step-tools", {},
          i > 0 ? el("button.link", { type: "button", text: "↑", title: t("jedit.move_up"), "data-testid": id("up"), onclick: () => move(i - 1) }) : "",
          i < list.length - 1 ? el("button.link", { type: "button", text: "↓", title: t("jedit.move_down"), "data-testid": id("down"), onclick: () => move(i + 1) }) : "",
          el("button.link.danger", { type: "button", text: "×", title: t("common.remove"), "data-testid": id("remove"),
            onclick: () => { list.splice(i, 1); draw(); changed(); } })));
      let body;
      if (kind === "wait") body = waitForm(step.wait, path + ".wait", id);
      else if (kind === "if") body = ifForm(step, path, id);
      else if (kind === "split") body = splitForm(step, path, id);
      else if (kind === "exit") body = [el("p.muted", { text: t("jedit.exit_help") })];
      else body = actionForm(step, path, id);
      return el("li.jedit-step.jedit-" + (ACTIONS.includes(kind) ? "action" : kind), { "data-step": short }, head, ...body);
    }

    /* A list of steps (the journey's, or a branch's) with "+ step" at its end. */
    function stepList(list, prefix) {
      const short = prefix.replace(/^steps\.?/, "").replace(/\.split\.(\d+)\.steps/g, ".$1");
      const add = F.select([["", t("jedit.add_step")], ...F.choices("jedit.kind", STEP_KINDS)], "", (v) => {
        if (!v) return;
        list.push(blankStep(v)); draw(); changed();
      }, "add-step" + (short ? "-" + short : ""));
      return el("ol.journey-flow.jedit-steps", {}, ...list.map((_, i) => stepCard(list, i, prefix)), el("li.jedit-add", {}, add));
    }

    // holdout, goal and guard rails -----------------------------------------------------------------
    function settingsForm() {
      const caps = (spec.caps = spec.caps && typeof spec.caps === "object" ? spec.caps : {});
      const goal = spec.goal;
      const quiet = spec.quiet_hours;
      const exits = (spec.exit_on = Array.isArray(spec.exit_on) ? spec.exit_on : []);
      const pct = (v) => (filled(v) ? Math.round(v * 10000) / 100 : "");
      return el("section.card.jedit-settings", {}, el("h3", { text: t("jedit.settings") }),
        el("div.inline", {},
          field(t("jedit.holdout"), "holdout", el("span.inline", {}, el("input", { type: "number", min: 0, max: 50, step: 1, style: "width:5em",
            value: pct(spec.holdout === undefined ? 0.1 : spec.holdout), "data-testid": "journey-holdout",
            onchange: (e) => { spec.holdout = filled(e.target.value) ? Number(e.target.value) / 100 : 0.1; changed(); } }), el("span", { text: "%" }))),
          field(t("jedit.language"), "language", F.select(F.choices("jedit.lang", ["zh", "en"]), spec.language || "zh",
            (v) => { spec.language = v; changed(); }, "journey-language"))),
        el("p.muted.small", { text: t("jedit.holdout_help") }),
        el("label.check", { "data-path": "goal" }, el("input", { type: "checkbox", checked: !!goal, "data-testid": "goal-on", onchange: (e) => {
          if (e.target.checked) spec.goal = { event: firstEvent(), within: { value: 7, unit: "day" } }; else delete spec.goal;
          draw(); changed();
        } }), t("jedit.goal_on")),
        goal ? el("div.inline", {}, field(t("jedit.goal_event"), "goal.event", eventPick(goal.event, (v) => { goal.event = v; changed(); }, "goal-event")),
          field(t("jedit.within"), "goal.within", duration(goal, "within", "goal.within", "goal-within"))) : "",
        el("div.field", { "data-path": "exit_on" }, el("span.field-label", { text: t("jedit.exit_on") }),
          ...exits.map((name, j) => el("div.inline", {}, eventPick(name, (v) => { exits[j] = v; changed(); }, "exit-on-" + j),
            el("button.link.danger", { type: "button", text: "×", title: t("common.remove"), onclick: () => { exits.splice(j, 1); draw(); changed(); } }))),
          el("button.link", { type: "button", text: t("jedit.add_exit"), "data-testid": "add-exit-on", onclick: () => { exits.push(firstEvent()); draw(); changed(); } })),
        el("div.inline", {},
          field(t("jedit.cap_day"), "caps.per_day", input(caps.per_day, (v) => { if (filled(v)) caps.per_day = Number(v); else delete caps.per_day; changed(); },
            "cap-day", { type: "number", min: 1, style: "width:6em", placeholder: t("jedit.none") })),
          field(t("jedit.cap_week"), "caps.per_week", input(caps.per_week, (v) => { if (filled(v)) caps.per_week = Number(v); else delete caps.per_week; changed(); },
            "cap-week", { type: "number", min: 1, style: "width:6em", placeholder: t("jedit.none") })),
          field(t("jedit.entry_limit"), "entry_limit", input(spec.entry_limit, (v) => { if (filled(v)) spec.entry_limit = Number(v); else delete spec.entry_limit; changed(); },
            "entry-limit", { type: "number", min: 1, style: "width:6em", placeholder: t("jedit.none") }))),
        el("label.check", { "data-path": "quiet_hours" }, el("input", { type: "checkbox", checked: !!quiet, "data-testid": "quiet-on", onchange: (e) => {
          if (e.target.checked) spec.quiet_hours = { start: "21:00", end: "08:00" }; else delete spec.quiet_hours;
          draw(); changed();
        } }), t("jedit.quiet_on")),
        quiet ? el("div.inline", {}, field(t("jedit.quiet_start"), "quiet_hours.start", input(quiet.start, (v) => { quiet.start = v; changed(); }, "quiet-start", { type: "time" })),
          field(t("jedit.quiet_end"), "quiet_hours.end", input(quiet.end, (v) => { quiet.end = v; changed(); }, "quiet-end", { type: "time" }))) : "");
    }

    function draw() {
      spec.steps = Array.isArray(spec.steps) ? spec.steps : [];
      form.replaceChildren(
        field(t("journeys.name"), "name", input(spec.name, (v) => { spec.name = v; changed(); }, "journey-name", { maxlength: 100, style: "width:100%" })),
        field(t("jedit.description"), "description", input(spec.description, (v) => { spec.description = v; changed(); }, "journey-description",
          { maxlength: 2000, style: "width:100%" })),
        triggerForm(),
        el("section.card.jedit-flow", { "data-path": "steps" }, el("h3", { text: t("journeys.flow") }), stepList(spec.steps, "steps")),
        settingsForm());
    }

    root.replaceChildren(el("div.journey-editor", {}, form,
      el("aside.journey-side", {}, el("div.live-count.card", {}, el("span.muted", { text: t("journeys.reach") }), " ", reach),
        el("label.field", {}, el("span.field-label", { text: t("jedit.json_view") }), json), jsonError,
        el("p.muted.small", { text: t("jedit.json_help") }))));
    draw();
    showJson();
    preview();
    return {
      definition: () => definition(spec),
      /* Shows the server's answer to a save under the fields it names; the rest goes to the error line. */
      problems: (message) => EP.showError(general, C.showProblems(form, message)),
    };
  };
})();
