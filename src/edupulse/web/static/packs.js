/* Scenario packs: the headline number on each card of the Scenarios home, and one pack's page (install,
   upgrade, uninstall, its numbers for a period, the empty state naming the events to send). */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, P = EP.pages;
  const $ = (id) => document.getElementById(id);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : values[k]));

  /* A card's number in its unit: a share as %, a ratio with two decimals, money and counts as numbers. */
  const number = (value, unit) => {
    if (value === null || value === undefined) return t("packs.no_number");
    if (unit === "%") return EP.pct(value);
    if (unit === "ratio") return (Math.round(value * 100) / 100).toFixed(2);
    return EP.fmt(value);
  };

  P.home = async function (data) {
    await Promise.all((data.packs || []).filter((p) => p.available).map(async (p) => {
      const node = document.querySelector('[data-headline="' + p.name + '"]');
      try {
        const found = await EP.api("GET", "/api/v1/packs/" + p.name + "/headline");
        node.textContent = found.empty && found.card.value === null ? t("packs.no_number") : number(found.card.value, found.card.unit);
        if (found.empty) {
          node.title = fill(t("packs.empty"), { events: found.missing_events.map(EP.eventLabel).join(", ") });
          document.querySelector('[data-state="' + p.name + '"]').append(el("div", {},
            el("a.card-empty", { href: "/scenarios/" + p.name, text: t("packs.card_empty") })));
        }
      } catch (err) { node.title = err.message; }
    }));
  };

  // one pack's page --------------------------------------------------------------------------------

  /* A table whose columns sort when their title is clicked (numbers largest first, text A to Z). */
  function sortable(columns, rows, best) {
    let order = { key: null, down: true };
    const wrap = el("div");
    const draw = () => {
      const sorted = rows.slice();
      if (order.key) sorted.sort((a, b) => {
        const x = a[order.key], y = b[order.key];
        if (typeof x === "string" || typeof y === "string") return String(x).localeCompare(String(y)) * (order.down ? 1 : -1);
        return ((y === null ? -Infinity : y) - (x === null ? -Infinity : x)) * (order.down ? 1 : -1);
      });
      const heads = columns.map((c) => el("button.link", { type: "button", "data-sort": c.key,
        text: t(c.label || "packs.col." + c.key) + (order.key === c.key ? (order.down ? " ↓" : " ↑") : "") }));
      heads.forEach((h, i) => h.addEventListener("click", () => {
        order = { key: columns[i].key, down: order.key === columns[i].key ? !order.down : true }; draw();
      }));
      const body = sorted.map((row) => columns.map((c) => {
        const v = row[c.key];
        if (c.user && (v === null || v === undefined) && c.none) return t(c.none);
        if (c.user) return { text: v, user: true, cls: [c.wrap ? "wrap" : "", best && best(row) ? "best" : ""].join(" ").trim() };
        return c.show ? c.show(v, row) : (v === null || v === undefined ? "—" : EP.fmt(v));
      }));
      const table = EP.table(heads, body, "grid.sortable");
      sorted.forEach((row, i) => { if (best && best(row)) table.tBodies[0].rows[i].classList.add("best-row"); });
      wrap.replaceChildren(table);
    };
    draw();
    return wrap;
  }

  const ratio2 = (v) => (v === null || v === undefined ? "—" : (Math.round(v * 100) / 100).toFixed(2));
  const RENDER = {
    channel_quality(h, node) {
      const cols = [{ key: "channel", user: true }, { key: "visitors" }, { key: "leads" }, { key: "valid_leads" },
        { key: "trials_booked" }, { key: "trials_attended" }, { key: "first_orders" },
        { key: "first_order_rate", show: EP.pct }, { key: "revenue" }, { key: "spend" }, { key: "cost_per_lead" },
        { key: "cac" }, { key: "roi", show: ratio2 }];
      const notes = el("p");
      if (h.best_channel) notes.append(el("span.tag", {}, t("packs.best_channel").split("{channel}")[0], EP.u(h.best_channel)), " ");
      if (h.best_roi_channel) notes.append(el("span.tag", {}, t("packs.best_roi").split("{channel}")[0], EP.u(h.best_roi_channel)));
      const campaignCols = [{ key: "channel", user: true }, { key: "campaign", user: true, none: "packs.no_campaign" },
        { key: "leads" }, { key: "valid_leads" }, { key: "trials_booked" }, { key: "trials_attended" }, { key: "first_orders" },
        { key: "first_order_rate", show: EP.pct }, { key: "revenue" }, { key: "spend" }, { key: "cost_per_lead" },
        { key: "cac" }, { key: "roi", show: ratio2 }];
      node.replaceChildren(el("h2", { text: t("packs.channels") }), notes, el("p.muted", { text: t("packs.sort_hint") }),
        el("div", { id: "channel-table" }, sortable(cols, h.channels, (r) => r.channel === h.best_channel)),
        el("h2", { text: t("packs.campaigns") }), el("div", { id: "campaign-table" }, sortable(campaignCols, h.campaigns)));
    },
  };

  RENDER.front_back_join = function (h, node) {
    const chart = el("div.chart", { id: "roi-weeks", style: "height:320px" });
    const cols = [{ key: "channel", user: true }, { key: "revenue" }, { key: "spend" }, { key: "roi", show: ratio2 }];
    node.replaceChildren(h.has_spend ? "" : el("div.notice", { id: "no-spend", text: t("packs.no_spend") }),
      el("h2", { text: t("packs.roi_by_week") }), chart, el("div", { id: "join-table" }, sortable(cols, h.channels)));
    EP.chart(chart, { tooltip: { trigger: "axis" }, legend: { type: "scroll" }, xAxis: { type: "category", data: h.weeks },
      yAxis: { type: "value" }, series: h.channels.filter((c) => c.roi !== null).map((c) => ({ type: "line", connectNulls: false, name: EP.userText(c.channel),
        data: c.roi_by_week })) });
  };

  RENDER.realtime_board = function (h, node) {
    const cols = [{ key: "channel", user: true }, { key: "leads" }, { key: "orders" }, { key: "leads_last_day" },
      { key: "orders_last_day" }];
    const STATE = { ok: t("packs.alert.state.ok"), firing: t("packs.alert.state.firing") };
    const alerts = h.alerts.length ? el("ul.list", { id: "alert-list" }, h.alerts.map((a) => el("li", { "data-state": a.state },
      el("span.tag", { text: STATE[a.state] || a.state }), " ", EP.u(a.name), " · ",
      t("packs.alert.last") + ": ", el("span", { translate: "no", text: a.last_hour || "—" }), " · ",
      t(a.webhook ? "packs.alert.webhook" : "packs.alert.no_webhook")))) : el("p.muted", { text: t("packs.alert.none") });
    const named = h.channels.reduce((n, c) => n + c.leads, 0);
    const totals = el("div.stats", { id: "realtime-totals" }, stat(EP.fmt(h.leads), t("packs.col.leads")),
      stat(EP.fmt(h.orders), t("packs.col.orders")), stat(EP.fmt(h.leads_last_day), t("packs.col.leads_last_day")),
      stat(EP.fmt(h.orders_last_day), t("packs.col.orders_last_day")));
    const unnamed = h.leads > named ? el("p.muted", { id: "no-channel-leads", text: fill(t("packs.no_channel_leads"), { n: EP.fmt(h.leads - named) }) }) : "";
    node.replaceChildren(el("p.muted", { text: t("packs.refreshing") }), totals, unnamed, el("div", { id: "realtime-table" }, sortable(cols, h.channels)),
      el("h2", { text: t("packs.alerts") }), el("p.muted", { text: t("packs.alert.about") }), alerts);
  };

  const pct = (v) => EP.pct(v);
  const stat = (value, label) => el("div.stat", {}, el("div.stat-value", { text: value }), el("div.stat-label", { text: label }));

  RENDER.learning_indicators = function (h, node) {
    const rates = [{ key: "scheduled_lessons" }, { key: "attendance_rate", show: pct }, { key: "completion_rate", show: pct },
      { key: "homework_rate", show: pct }, { key: "quiz_accuracy", show: pct }];
    const period = new URLSearchParams();
    if ($("pack-range") && $("pack-range").value === "all") period.set("date_range", "all");
    else if (h.date_from) { period.set("date_from", h.date_from); period.set("date_to", h.date_to); }
    const report = (id) => el("a", { href: "/scenarios/learning_indicators/classes/" + encodeURIComponent(id) + "?" + period.toString(),
      text: t("packs.class_report.open") });
    const classes = h.classes.map((c) => Object.assign({}, c, { report: c.class_id }));
    const points = [{ key: "knowledge_point", user: true }, { key: "answers" }, { key: "correct" }, { key: "accuracy", show: pct }];
    node.replaceChildren(el("div.stats", {}, stat(pct(h.completion_rate), t("packs.completion_rate")),
      stat(pct(h.homework_rate), t("packs.homework_rate")), stat(pct(h.quiz_accuracy), t("packs.quiz_accuracy"))),
      el("h2", { text: t("packs.courses") }), el("div", { id: "course-table" }, sortable([{ key: "course_id", user: true }, ...rates], h.courses)),
      el("h2", { text: t("packs.classes") }), el("p.muted", { text: t("packs.class_report.hint") }),
      el("div", { id: "class-table" }, sortable([{ key: "class_id", user: true }, ...rates, { key: "report", show: report }], classes)),
      el("h2", { text: t("packs.teachers") }), h.teachers.length || !h.classes.length
        ? el("div", { id: "teacher-table" }, sortable([{ key: "teacher_id", user: true }, ...rates], h.teachers))
        : el("p.muted", { id: "no-teachers", text: t("packs.no_teachers") }),
      el("h2", { text: t("packs.knowledge_points") }), el("div", { id: "kp-table" }, sortable(points, h.knowledge_points)));
  };

  RENDER.b2b_health = function (h, node) {
    const cols = [{ key: "institution_id", user: true }, { key: "name", user: true }, { key: "score" },
      { key: "warning", show: (v) => t(v ? "packs.warning_yes" : "packs.warning_no") },
      { key: "staff", show: (v, r) => (v === null ? "—" : EP.fmt(v) + (r.staff_estimated ? " *" : "")) },
      { key: "login_days_7" }, { key: "login_days_30" }, { key: "staff_login_days_7" }, { key: "staff_login_days_30" },
      { key: "enrolments_30" }, { key: "enrolments_prev_30" }, { key: "enrolment_growth", show: pct }];
    // staff counted from logins (no staff property) are marked *, and said below the table
    node.replaceChildren(el("h2", { text: t("packs.institutions") }),
      el("div", { id: "institution-table" }, sortable(cols, h.institutions, (r) => r.warning)),
      h.institutions.some((r) => r.staff_estimated) ? el("p.muted", { id: "staff-estimated", text: t("packs.staff_estimated") }) : "");
  };

  // what other files add to a pack's page (pack_views.js: referral, school accounts, one person; packs_ops.js:
  // lead tiering, automated SOPs, supervision, renewal)
  EP.packPage = { RENDER: RENDER, sortable: sortable, stat: stat, fill: fill };

  /* The import guide of a pack with template files: what each file holds, the template, the command. */
  function guide(pack) {
    if (!pack.templates || !pack.templates.length) return null;
    const what = { "spend.csv": "packs.guide.spend", "leads.csv": "packs.guide.leads", "orders.csv": "packs.guide.orders",
      "lead_channels.csv": "packs.guide.lead_channels" };
    const kind = { "spend.csv": "spend", "leads.csv": "events", "orders.csv": "events", "lead_channels.csv": "profiles" };
    const project = (EP.boot.project && EP.boot.project.name) || "PROJECT";
    return el("div.card", { id: "import-guide" }, el("h2", { text: t("packs.guide.title") }), el("ol", {}, pack.templates.map((file) =>
      el("li", {}, el("p", { text: t(what[file] || "packs.guide.template") }),
        el("p", {}, t("packs.guide.template") + ": ", el("a", { href: "/api/v1/packs/" + pack.name + "/templates/" + file,
          translate: "no", download: file, text: file })),
        el("p", {}, t("packs.guide.command") + ": ", el("code", { text: "edupulse import " + (kind[file] || "events") + " " + file +
          ' --project "' + project + '"' }))))));
  }

  /* One class's report, to print: the class's indicators and each student's (the pack's headline with class_id). */
  P.class_report = async function (data) {
    const query = new URLSearchParams(location.search);
    if (query.get("date_range") === "all") $("pack-range").value = "all";
    if (query.get("date_from") || query.get("date_to")) {
      $("pack-range").value = "custom";
      $("pack-from").value = query.get("date_from") || "";
      $("pack-to").value = query.get("date_to") || "";
    }
    const rates = [{ key: "scheduled_lessons" }, { key: "attendance_rate", show: pct }, { key: "completion_rate", show: pct },
      { key: "homework_rate", show: pct }, { key: "quiz_accuracy", show: pct }];
    const load = async () => {
      const params = new URLSearchParams({ class_id: data.class_id });
      const range = $("pack-range").value;
      if (range === "all") params.set("date_range", "all");
      if (range === "custom") {
        if ($("pack-from").value) params.set("date_from", $("pack-from").value);
        if ($("pack-to").value) params.set("date_to", $("pack-to").value);
      }
      $("report-body").replaceChildren(el("p.muted", { text: t("packs.loading") }));
      $("pack-error").replaceChildren();
      try {
        const h = await EP.api("GET", "/api/v1/packs/learning_indicators/headline?" + params.toString());
        const r = h.class_report;
        const fact = (label, value) => [el("dt", { text: t(label) }), el("dd", { translate: "no", text: value || "—" })];
        const facts = el("dl.report-facts", {}, ...fact("packs.class_report.class", (r.name ? r.name + " · " : "") + r.class_id),
          ...fact("packs.class_report.course", r.course_id), ...fact("packs.class_report.teacher", r.teacher_id),
          ...fact("packs.class_report.period", h.date_from + " – " + h.date_to),
          ...fact("packs.class_report.printed", new Date().toISOString().slice(0, 16).replace("T", " ")));
        const i = r.indicators;
        $("report-body").replaceChildren(facts, el("div.stats", {}, stat(pct(i.attendance_rate), t("packs.attendance_rate")),
          stat(pct(i.completion_rate), t("packs.completion_rate")), stat(pct(i.homework_rate), t("packs.homework_rate")),
          stat(pct(i.quiz_accuracy), t("packs.quiz_accuracy"))),
          el("h2", { text: t("packs.class_report.students") }),
          el("div", { id: "student-table" }, sortable([{ key: "student", user: true }, ...rates], r.students)));
        document.body.dataset.report = String(Number(document.body.dataset.report || 0) + 1);
      } catch (err) {
        $("report-body").replaceChildren();
        EP.showError($("pack-error"), err.message);
      }
    };
    $("report-period").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    $("report-print").addEventListener("click", () => window.print());
    await load();
  };

  P.scenario = async function (data) {
    const pack = data.pack;
    const load = async () => {
      const params = new URLSearchParams();
      const range = $("pack-range").value;
      if (range === "all") params.set("date_range", "all");
      if (range === "custom") {
        if ($("pack-from").value) params.set("date_from", $("pack-from").value);
        if ($("pack-to").value) params.set("date_to", $("pack-to").value);
      }
      if ($("pack-roi-days")) params.set("roi_days", $("pack-roi-days").value);
      $("pack-body").replaceChildren(el("p.muted", { text: t("packs.loading") }));
      try {
        const h = await EP.api("GET", "/api/v1/packs/" + pack.name + "/headline?" + params.toString());
        $("pack-dates").replaceChildren(el("span", { translate: "no", text: h.date_from + " – " + h.date_to }));
        $("pack-empty").hidden = !h.empty;
        if (h.empty) {
          $("pack-empty").replaceChildren(fill(t("packs.empty"), { events: h.missing_events.map(EP.eventLabel).join(", ") }), " ",
            el("a", { href: "/catalog", text: t("packs.tracking_plan") }));
        }
        const body = el("div");
        body.append(el("div.stats", {}, el("div.stat", {}, el("div.stat-value", { id: "pack-card", text: number(h.card.value, h.card.unit) }),
          el("div.stat-label", { text: t(h.card.label) }))));
        const more = el("div");
        body.append(more);
        $("pack-body").replaceChildren(body);  // in the page before charts are drawn (they take its width)
        if (RENDER[pack.name]) RENDER[pack.name](h, more);
        document.body.dataset.headline = String(Number(document.body.dataset.headline || 0) + 1);
      } catch (err) { $("pack-body").replaceChildren(); EP.showError($("pack-error"), err.message); }
    };
    for (const li of document.querySelectorAll("#pack-needs li")) {
      li.prepend(el("span", { text: EP.eventLabel(li.dataset.event) + " " }));
    }
    const howTo = guide(pack);
    if (howTo) $("pack-body").after(howTo);
    $("pack-period").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    const act = async (method, url, message) => {
      try {
        const done = await EP.api(method, url);
        EP.toast(fill(t(message), { created: done.created.length, updated: done.updated.length, kept: done.kept.length,
          removed: done.removed.length }));
        setTimeout(() => location.reload(), 600);
      } catch (err) { EP.showError($("pack-error"), err.message); }
    };
    if ($("pack-install")) $("pack-install").addEventListener("click", () => act("POST", "/api/v1/packs/" + pack.name + "/install", "packs.done"));
    if ($("pack-uninstall")) $("pack-uninstall").addEventListener("click", () => {
      if (confirm(t("packs.confirm_uninstall"))) act("DELETE", "/api/v1/packs/" + pack.name, "packs.removed");
    });
    await EP.catalogue();
    await load();
    if (pack.name === "realtime_board") setInterval(load, 10000);
  };
})();
