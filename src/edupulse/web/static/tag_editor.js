/* The tag editor: a tag's definition as forms for each type (custom tiers with the segment builder's
   conditions, metric tiers, first / last event, event preference, RFM, SQL, uploaded values, the rule tags
   and model scores), the same definition as JSON beside them, and the distribution the definition would give
   now (/api/v1/tags/preview) before it is saved. As in the journey editor, the JSON is the state: form edits
   rewrite the JSON view, an edit of the JSON view redraws the forms, and the server's problems are shown
   under the fields they name. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields, C = EP.conditions;
  const TYPES = ["custom_tiers", "metric_tiers", "first_event", "last_event", "preference", "rfm", "sql", "uploaded",
    "missed_streak", "referral_kol", "institution_health", "model"];
  const SPEC_KEYS = ["name", "description", "owner", "unit", "value_type", "definition", "schedule"];
  const AGGREGATES = ["count", "distinct_days", "sum", "avg", "min", "max"];
  const { filled, clone, numberOrNone, field, input } = F;
  // each type starts from an example a person changes
  const EXAMPLES = {
    custom_tiers: { name: "lead_tier", description: "lead tier from behaviour", definition: { type: "custom_tiers", tiers: [
      { name: "A", condition: { and: [{ event: "trial_booked" }, { event: "call_connected" }] } },
      { name: "B", condition: { event: "page_view", at_least: 3, window: { last_days: 14 } } },
      { name: "C", condition: { event: "lead_created" } }] } },
    metric_tiers: { name: "spend_tier", definition: { type: "metric_tiers", measure: { event: "order_paid", aggregate: "sum", property: "amount" },
      ranges: [{ name: "high", min: 5000 }, { name: "medium", min: 1000, max: 5000 }, { name: "low", max: 1000 }] } },
    first_event: { name: "first_channel", definition: { type: "first_event", event: "lead_created", property: "channel" } },
    last_event: { name: "last_lesson", value_type: "time", definition: { type: "last_event", event: "lesson_attended" } },
    preference: { name: "favourite_topic", definition: { type: "preference", event: "quiz_answered", property: "knowledge_point", top: 2 } },
    rfm: { name: "customer_rfm", definition: { type: "rfm", window: { last_days: 365 } } },
    sql: { name: "orders_count", value_type: "number", definition: { type: "sql", sql: "SELECT person_id AS unit, count(*) AS value FROM events WHERE event = 'order_paid' GROUP BY person_id" } },
    uploaded: { name: "crm_grade", definition: { type: "uploaded", id_type: "crm_lead_id", mode: "overwrite" } },
    missed_streak: { name: "missed_2_in_a_row", definition: { type: "missed_streak", streak: 2 } },
    referral_kol: { name: "top_referrers", definition: { type: "referral_kol", top: 20 } },
    institution_health: { name: "school_health", unit: "institution", definition: { type: "institution_health", warning_below: 40 } },
    model: { name: "lead_score", definition: { type: "model", model: "lead_propensity" } },
  };
  EP.tagExamples = EXAMPLES;

  // the tag's own fields; tiers, ranges and a tier's condition are kept even while empty
  const definition = F.definitionOf(SPEC_KEYS, new Set(["tiers", "ranges", "condition"]), new Set());

  function distributionTable(rows) {
    return EP.table([t("tags.value"), t("tags.count"), t("tags.mean")],
      rows.map((r) => [{ text: r.value === null ? "—" : r.value, user: true }, r.units, r.mean_number === null ? "—" : EP.fmt(r.mean_number)]));
  }
  EP.tagDistributionTable = distributionTable;

  EP.tagEditor = async function (root, initial, opts) {
    const lists = await C.lists();
    const cat = lists.cat;
    let spec = definition(clone(initial));
    const form = el("div.tag-form");
    const view = F.jsonView({ id: "tag-json", rows: 22, "data-testid": "tag-json" }, null, () => definition(spec),
      (parsed) => { spec = parsed; draw(); });
    const json = view.node, jsonError = view.error, showJson = view.show;
    const result = el("div", { id: "tag-preview-result", "data-testid": "tag-preview-result" });
    const general = opts.errorBox;
    const eventProps = { properties: cat.properties, person_properties: [], groups: [] };

    const changed = () => { showJson(); result.dataset.stale = "1"; };

    async function preview() {
      result.replaceChildren(el("p.muted", { text: t("common.loading") }));
      try {
        const found = await EP.api("POST", "/api/v1/tags/preview", definition(spec));
        C.showProblems(form, "");
        EP.showError(general, "");
        const chart = el("div.chart.small-chart", { hidden: true });
        result.replaceChildren(el("p", { "data-testid": "tag-preview-units", "data-units": String(found.units),
          text: t("tags.preview_units").replace("{n}", EP.fmt(found.units)) }), distributionTable(found.distribution), chart);
        if (found.distribution.length) EP.chart(chart, { xAxis: { type: "category", data: found.distribution.map((r) => EP.userText(String(r.value))) },
          yAxis: { type: "value" }, series: [{ type: "bar", data: found.distribution.map((r) => r.units) }] });
        result.dataset.preview = JSON.stringify(found);
      } catch (err) {
        result.replaceChildren();
        EP.showError(general, C.showProblems(form, err.message));
      }
      delete result.dataset.stale;
      root.dataset.previewed = String(Number(root.dataset.previewed || 0) + 1);
    }

    // shared pieces -------------------------------------------------------------------------------
    const eventPick = (holder, key, path, testid) => field(t("tagedit.event"), path, F.eventSelect(cat, holder[key], (v) => { holder[key] = v; changed(); }, false, testid));
    const propertyPick = (holder, key, path, testid, label, optional) => field(label, path, F.propertySelect(eventProps, holder[key],
      (v) => { if (v) holder[key] = v; else delete holder[key]; changed(); }, testid, { emptyLabel: optional ? t("tagedit.no_property") : null }));
    const windowDays = (d, path) => field(t("tagedit.window"), path, el("span.inline", {}, input(d.window && d.window.last_days, (v) => {
      if (filled(v)) d.window = { last_days: Number(v) }; else delete d.window; changed();
    }, "tag-window", { type: "number", min: 1, style: "width:6em", placeholder: t("tagedit.all_time") }), el("span", { text: t("segments.days") })));
    const filters = (d, path) => el("div.field", { "data-path": path }, el("span.field-label", { text: t("tagedit.filters") }),
      F.filters(cat, (d.filters = Array.isArray(d.filters) ? d.filters : []), changed, "tag"));
    /* Named ranges of a number (min included, max excluded; either end open). */
    function ranges(list, path, testid, words) {
      const box = el("div.field", { "data-path": path }, el("span.field-label", { text: words }));
      list.forEach((r, i) => box.append(el("div.inline.tag-range", { "data-path": path + "." + i },
        input(r.name, (v) => { r.name = v; changed(); }, testid + "-" + i + "-name", { placeholder: t("tagedit.range_name"), style: "width:8em" }),
        el("span", { text: t("tagedit.from") }),
        input(r.min, (v) => { const n = numberOrNone(v); if (n === undefined) delete r.min; else r.min = n; changed(); }, testid + "-" + i + "-min",
          { type: "number", step: "any", style: "width:7em", placeholder: t("tagedit.open") }),
        el("span", { text: t("tagedit.to") }),
        input(r.max, (v) => { const n = numberOrNone(v); if (n === undefined) delete r.max; else r.max = n; changed(); }, testid + "-" + i + "-max",
          { type: "number", step: "any", style: "width:7em", placeholder: t("tagedit.open") }),
        el("button.link.danger", { type: "button", text: "×", title: t("common.remove"), "data-testid": testid + "-" + i + "-remove",
          onclick: () => { list.splice(i, 1); draw(); changed(); } }))));
      box.append(el("button.link", { type: "button", text: t("tagedit.add_range"), "data-testid": testid + "-add",
        onclick: () => { list.push({ name: "" }); draw(); changed(); } }));
      return box;
    }

    // the forms of each type ----------------------------------------------------------------------
    function customTiers(d) {
      const tiers = (d.tiers = Array.isArray(d.tiers) ? d.tiers : []);
      const box = el("div.tag-tiers", { "data-path": "definition.tiers" });
      tiers.forEach((tier, i) => {
        const ctx = Object.assign({}, lists, { kinds: ["event", "property", "segment", "tag"], properties: "person", prefix: "tier-" + i + "-cond",
          path: "definition.tiers." + i + ".condition", label: t("tagedit.tier_condition") });
        const state = C.parse(tier.condition, ctx);
        if (state && !state.items.length) state.items.push(C.blank("event", ctx));
        const move = (to) => { tiers.splice(to, 0, tiers.splice(i, 1)[0]); draw(); changed(); };
        box.append(el("div.jedit-step.tag-tier", { "data-tier": String(i) },
          el("div.jedit-step-head", { "data-path": "definition.tiers." + i },
            el("strong", { text: t("tagedit.tier") + " " + (i + 1) }),
            input(tier.name, (v) => { tier.name = v; changed(); }, "tier-" + i + "-name", { placeholder: t("tagedit.tier_name"), style: "width:10em" }),
            el("span.jedit-step-tools", {},
              i > 0 ? el("button.link", { type: "button", text: "↑", title: t("jedit.move_up"), onclick: () => move(i - 1) }) : "",
              i < tiers.length - 1 ? el("button.link", { type: "button", text: "↓", title: t("jedit.move_down"), onclick: () => move(i + 1) }) : "",
              el("button.link.danger", { type: "button", text: "×", title: t("common.remove"), "data-testid": "tier-" + i + "-remove",
                onclick: () => { tiers.splice(i, 1); draw(); changed(); } }))),
          state ? C.editor(state, () => { tier.condition = C.json(state, ctx) || {}; changed(); }, ctx)
            : el("p.muted", { "data-path": "definition.tiers." + i + ".condition", text: t("conditions.json_only") })));
      });
      return [el("p.muted.small", { text: t("tagedit.tiers_help") }), box,
        el("button.link", { type: "button", text: t("tagedit.add_tier"), "data-testid": "add-tier", onclick: () => {
          tiers.push({ name: "", condition: {} }); draw(); changed();
        } }),
        field(t("tagedit.otherwise"), "definition.otherwise", input(d.otherwise, (v) => { if (v) d.otherwise = v; else delete d.otherwise; changed(); },
          "tier-otherwise", { placeholder: t("tagedit.no_value") }))];
    }

    function metricTiers(d) {
      const m = (d.measure = d.measure && typeof d.measure === "object" ? d.measure : {});
      const numeric = !["count", "distinct_days"].includes(m.aggregate || "count");
      return [el("div.inline", {}, field(t("tagedit.aggregate"), "definition.measure.aggregate", F.select(F.choices("tagedit.aggregate", AGGREGATES), m.aggregate || "count", (v) => {
        m.aggregate = v;
        if (["count", "distinct_days"].includes(v)) delete m.property;
        draw(); changed();
      }, "measure-aggregate")),
      numeric ? propertyPick(m, "property", "definition.measure.property", "measure-property", t("tagedit.of_property")) : ""),
      eventPick(m, "event", "definition.measure.event", "measure-event"),
      windowDays(m, "definition.measure.window"), filters(m, "definition.measure.filters"),
      field(t("tagedit.cut"), "definition.cut", F.select(F.choices("tagedit.cut", ["values", "percentiles"]), d.cut || "values",
        (v) => { if (v === "values") delete d.cut; else d.cut = v; draw(); changed(); }, "metric-cut")),
      ranges((d.ranges = Array.isArray(d.ranges) ? d.ranges : []), "definition.ranges", "range",
        d.cut === "percentiles" ? t("tagedit.ranges_percentiles") : t("tagedit.ranges_values")),
      el("p.muted.small", { text: t("tagedit.ranges_help") })];
    }

    const FORMS = {
      custom_tiers: customTiers,
      metric_tiers: metricTiers,
      first_event: (d) => [eventPick(d, "event", "definition.event", "tag-event"),
        propertyPick(d, "property", "definition.property", "tag-property", t("tagedit.first_last_value"), true),
        windowDays(d, "definition.window"), filters(d, "definition.filters")],
      preference: (d) => [eventPick(d, "event", "definition.event", "tag-event"),
        propertyPick(d, "property", "definition.property", "tag-property", t("tagedit.preference_property")),
        field(t("tagedit.top"), "definition.top", input(d.top, (v) => { d.top = numberOrNone(v); changed(); }, "tag-top", { type: "number", min: 1, max: 10, style: "width:5em" })),
        windowDays(d, "definition.window"), filters(d, "definition.filters")],
      rfm: (d) => [eventPick(d, "event", "definition.event", "tag-event"),
        propertyPick(d, "amount", "definition.amount", "tag-amount", t("tagedit.amount")),
        windowDays(d, "definition.window"), el("p.muted.small", { text: t("tagedit.rfm_help") })],
      sql: (d) => [field(t("tagedit.sql"), "definition.sql", el("textarea.code", { rows: 6, translate: "no", spellcheck: "false", "data-testid": "tag-sql",
        value: d.sql || "", onchange: (e) => { d.sql = e.target.value; changed(); } })), el("p.muted.small", { text: t("tagedit.sql_help") })],
      uploaded: (d) => [el("div.inline", {}, field(t("tagedit.id_type"), "definition.id_type", input(d.id_type || "login_id", (v) => { d.id_type = v; changed(); }, "tag-id-type")),
        field(t("tagedit.mode"), "definition.mode", F.select(F.choices("tagedit.mode", ["incremental", "overwrite"]), d.mode || "incremental",
          (v) => { d.mode = v; changed(); }, "tag-mode"))), el("p.muted.small", { text: t("tagedit.uploaded_help") })],
      missed_streak: (d) => [el("div.inline", {}, field(t("tagedit.streak"), "definition.streak", input(d.streak || 3, (v) => { d.streak = numberOrNone(v); changed(); },
        "tag-streak", { type: "number", min: 2, max: 50, style: "width:5em" })),
      field(t("tagedit.class_group"), "definition.group", input(d.group || "class", (v) => { d.group = v; changed(); }, "tag-group")))],
      referral_kol: (d) => [field(t("tagedit.kol_top"), "definition.top", input(d.top || 10, (v) => { d.top = numberOrNone(v); changed(); },
        "tag-top", { type: "number", min: 1, style: "width:6em" }))],
      institution_health: (d) => [el("div.inline", {},
        field(t("tagedit.login_event"), "definition.login_event", F.eventSelect(cat, d.login_event || "staff_login", (v) => { d.login_event = v; changed(); }, false, "tag-login-event")),
        field(t("tagedit.enrol_event"), "definition.enrol_event", F.eventSelect(cat, d.enrol_event || "student_enrolled", (v) => { d.enrol_event = v; changed(); }, false, "tag-enrol-event"))),
      el("div.inline", {},
        field(t("tagedit.warning_below"), "definition.warning_below", input(filled(d.warning_below) ? d.warning_below : 50, (v) => { d.warning_below = numberOrNone(v); changed(); },
          "tag-warning-below", { type: "number", min: 0, max: 100, style: "width:5em" })),
        field(t("tagedit.watch_below"), "definition.watch_below", input(filled(d.watch_below) ? d.watch_below : 70, (v) => { d.watch_below = numberOrNone(v); changed(); },
          "tag-watch-below", { type: "number", min: 0, max: 100, style: "width:5em" })))],
      model: (d) => [field(t("tagedit.model"), "definition.model", F.select(F.choices("tagedit.model", ["lead_propensity", "dropout_risk", "renewal_propensity"]),
        d.model || "lead_propensity", (v) => { d.model = v; changed(); }, "tag-model")),
      ranges((d.tiers = Array.isArray(d.tiers) ? d.tiers : [{ name: "high", min: 0.7 }, { name: "medium", min: 0.4, max: 0.7 }, { name: "low", max: 0.4 }]),
        "definition.tiers", "score-tier", t("tagedit.score_tiers")),
      el("p.muted.small", { text: t("tagedit.model_help") })],
    };
    FORMS.last_event = FORMS.first_event;

    function draw() {
      const d = (spec.definition = spec.definition && typeof spec.definition === "object" ? spec.definition : { type: "custom_tiers" });
      const type = TYPES.includes(d.type) ? d.type : null;
      const units = [["person", t("tags.unit.person")], ...(cat.groups || []).map((g) => [g.type, EP.t("term.group." + g.type, null) || EP.userText(g.type)])];
      if (spec.unit && !units.some(([u]) => u === spec.unit)) units.push([spec.unit, EP.userText(spec.unit)]);
      form.replaceChildren(
        field(t("tags.pick_type"), "definition", F.select(F.choices("tags.type", TYPES), type || "custom_tiers", (v) => {
          const example = clone(EXAMPLES[v]);
          spec.definition = example.definition;
          spec.unit = example.unit || "person";
          spec.value_type = example.value_type || "string";
          // words of the previous example give way to the new one's; a person's own stay
          if (!opts.fixedName && (!filled(spec.name) || Object.values(EXAMPLES).some((x) => x.name === spec.name))) spec.name = example.name;
          if (!filled(spec.description) || Object.values(EXAMPLES).some((x) => x.description === spec.description)) spec.description = example.description;
          draw(); changed();
        }, "tag-type")),
        el("div.inline", {},
          field(t("tags.name"), "name", input(spec.name, (v) => { spec.name = v; changed(); }, "tag-name", { maxlength: 63, disabled: opts.fixedName ? true : null })),
          field(t("tagedit.unit"), "unit", F.select(units, spec.unit || "person", (v) => { spec.unit = v; changed(); }, "tag-unit")),
          field(t("tagedit.value_type"), "value_type", F.select(F.choices("tagedit.value_type", ["string", "number", "boolean", "time"]), spec.value_type || "string",
            (v) => { spec.value_type = v; changed(); }, "tag-value-type")),
          field(t("tagedit.schedule"), "schedule", F.select(F.choices("tagedit.schedule", ["daily", "manual"]), spec.schedule || "daily",
            (v) => { spec.schedule = v; changed(); }, "tag-schedule"))),
        field(t("tags.description"), "description", input(spec.description, (v) => { spec.description = v; changed(); }, "tag-description", { maxlength: 2000, style: "width:100%" })),
        el("section.card.tag-definition", {}, el("h3", { text: type ? t("tags.type." + type) : EP.userText(d.type) }),
          ...(type ? FORMS[type](d) : [el("p.muted", { text: t("jedit.unknown_action") })])));
    }

    root.replaceChildren(el("div.journey-editor", {}, el("div", {}, form,
      el("div.actions", {}, el("button", { type: "button", id: "tag-preview", "data-testid": "tag-preview", text: t("tags.preview"), onclick: preview })),
      result),
    el("aside.journey-side", {}, el("label.field", {}, el("span.field-label", { text: t("tagedit.json_view") }), json), jsonError,
      el("p.muted.small", { text: t("tagedit.json_help") }))));
    draw();
    showJson();
    return {
      definition: () => definition(spec),
      problems: (message) => EP.showError(general, C.showProblems(form, message)),
    };
  };

  /* Uploads a CSV (identity,value per line) to an uploaded tag; the answer says which lines were refused. */
  EP.uploadTagCsv = async function (name, text) {
    const headers = { "X-CSRF-Token": EP.boot.csrf, "Content-Type": "text/csv", Accept: "application/json" };
    if (EP.boot.project) headers["X-EduPulse-Project"] = String(EP.boot.project.id);
    const response = await fetch("/api/v1/tags/" + encodeURIComponent(name) + "/upload", { method: "POST", headers: headers, body: text, credentials: "same-origin" });
    if (!response.ok) throw new Error(await EP.errorText(response));
    return response.json();
  };
})();
