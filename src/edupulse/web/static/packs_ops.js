/* The pages of the packs built on tags and journeys (lead tiering, automated SOPs, tiered supervision, renewal
   intent): their parts of a pack's page, drawn from the pack's headline (packs.js draws the rest). */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t;
  const parts = EP.packPage, R = parts.RENDER;
  const sortable = parts.sortable, stat = parts.stat, fill = parts.fill;
  const pct = (v) => EP.pct(v);
  const yes = (v) => t(v ? "packs.ops.yes" : "packs.ops.no");
  const tierName = (v) => (v ? t("packs.ops.tier." + v) : "—");
  const when = (v) => (v ? String(v).slice(0, 16).replace("T", " ") : "—");
  const score = (v) => (v === null || v === undefined ? "—" : v.toFixed(3));
  const who = (identities, id) => {
    const ids = identities || {};
    return (ids.login_id || ids.mobile || ids.crm_lead_id || ["#" + id])[0];
  };
  const reasons = (row) => EP.reasons(row).join("; ");
  const col = (key, extra) => Object.assign({ key: key, label: "packs.ops.col." + key }, extra || {});
  const notice = (id, text) => el("p.notice", { id: id, text: text });

  /* The model's state: why a model tag has no values yet (its last run's reason, as the tags service says). */
  function modelState(h, id) {
    if (h.tag_ready) return null;
    const why = h.model_error ? el("span", { translate: "no", text: EP.userText(h.model_error) }) : t("packs.ops.model_not_run");
    return el("div.notice", { id: id }, t("packs.ops.model_not_ready") + " ", why, " ",
      el("a", { href: "/tags", text: t("packs.ops.open_tags") }));
  }

  /* Switch a pack's journey on (start) or pause it, for those who may install the pack. */
  function switchButton(id, status, key) {
    if (!id || document.getElementById("pack-install") === null || status === "finished") return "";
    const running = status === "running";
    return el("button", { type: "button", "data-sop": key, text: t(running ? "packs.ops.pause" : "packs.ops.switch_on"),
      onclick: async () => {
        try {
          await EP.api("POST", "/api/v1/journeys/" + id + "/" + (running ? "pause" : "start"));
          location.reload();
        } catch (err) { EP.showError(document.getElementById("pack-error"), err.message); }
      } });
  }

  function journeyLink(id, status) {
    if (!id) return el("span", { text: t("packs.ops.not_installed_journey") });
    return el("span", {}, el("a", { href: "/journeys/" + id, text: t("packs.ops.open_journey") }), " · ",
      el("span.tag", { "data-status": status, text: t("packs.ops.status." + status) }));
  }

  R.lead_tiering = function (h, node) {
    const form = el("form.inline-form", { id: "lead-filters" },
      el("label", {}, t("packs.ops.channel") + " ", el("select", { id: "lead-channel" },
        el("option", { value: "", text: t("packs.ops.all_channels") }),
        h.channels.map((c) => el("option", { value: c, translate: "no", text: EP.userText(c), selected: c === h.channel })))),
      el("label", {}, t("packs.ops.max_age") + " ", el("input", { id: "lead-age", type: "number", min: "0",
        value: h.max_age_days === null ? "" : String(h.max_age_days) })),
      el("button", { type: "submit", text: t("packs.apply") }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      const range = document.getElementById("pack-range").value;
      if (range === "all") params.set("date_range", "all");
      if (range === "custom") {
        if (document.getElementById("pack-from").value) params.set("date_from", document.getElementById("pack-from").value);
        if (document.getElementById("pack-to").value) params.set("date_to", document.getElementById("pack-to").value);
      }
      if (form.querySelector("#lead-channel").value) params.set("channel", form.querySelector("#lead-channel").value);
      if (form.querySelector("#lead-age").value) params.set("max_age_days", form.querySelector("#lead-age").value);
      try {
        R.lead_tiering(await EP.api("GET", "/api/v1/packs/lead_tiering/headline?" + params.toString()), node);
        document.body.dataset.headline = String(Number(document.body.dataset.headline || 0) + 1);
      } catch (err) { EP.showError(document.getElementById("pack-error"), err.message); }
    });
    const tiers = el("div.stats", { id: "tier-stats" }, h.tiers.map((x) => el("div.stat", { "data-tier": x.tier },
      el("div.stat-value", { text: EP.fmt(x.leads) }), el("div.stat-label", { text: tierName(x.tier) }),
      el("div.muted", { text: fill(t("packs.ops.tier_line"), { orders: EP.fmt(x.first_orders), rate: pct(x.first_order_rate) }) }))));
    const rows = h.leads.map((l) => ({ who: who(l.identities, l.person_id), person_id: l.person_id, channel: l.channel,
      age_days: l.age_days, tier: l.tier, score: l.score, reasons: reasons(l), first_order: l.first_order }));
    const leadCols = [col("who", { user: true }), col("channel", { user: true }), col("age_days"),
      col("tier", { show: tierName }), col("score", { show: score }), col("reasons", { user: true, wrap: true }), col("first_order", { show: yes })];
    const advisorCols = [col("advisor_id", { user: true }), col("leads_assigned"), col("first_orders"),
      col("first_order_rate", { show: pct })];
    const advisors = h.advisors.map((a) => ({ advisor_id: a.advisor_id, leads_assigned: a.leads, first_orders: a.first_orders,
      first_order_rate: a.first_order_rate }));
    const assign = el("div.card", { id: "assign-journey" }, el("h2", { text: t("packs.ops.assign_title") }),
      el("p", { text: t("packs.ops.assign_about") }),
      h.assign_journey ? el("p", {}, journeyLink(h.assign_journey.journey_id, h.assign_journey.status), " ",
        switchButton(h.assign_journey.journey_id, h.assign_journey.status, "assign_high_intent"))
        : el("p.muted", { text: t("packs.ops.install_for_journey") }),
      h.advisor_tasks.length ? el("div", { id: "advisor-task-table" }, sortable([col("advisor", { user: true }), col("tasks"),
        col("open"), col("first_orders"), col("first_order_rate", { show: pct })], h.advisor_tasks)) : "",
      el("p", {}, el("a", { href: "/journey-tasks", text: t("packs.ops.open_tasks") })));
    node.replaceChildren(modelState(h, "lead-model") || "", form, el("h2", { text: t("packs.ops.tiers") }), tiers,
      el("h2", { text: fill(t("packs.ops.lead_pool"), { n: EP.fmt(h.leads_total) }) }),
      el("div", { id: "lead-table" }, sortable(leadCols, rows)), assign,
      el("h2", { text: t("packs.ops.advisors") }), el("p.muted", { text: t("packs.ops.advisors_about") }),
      el("div", { id: "advisor-table" }, sortable(advisorCols, advisors)));
  };

  R.automated_sops = function (h, node) {
    const rows = h.sops.map((s) => {
      const act = switchButton(s.journey_id, s.status, s.key);
      const arm = (a) => (a ? fill(t("packs.ops.arm"), { entered: EP.fmt(a.entered), converted: EP.fmt(a.converted), rate: pct(a.rate) }) : "—");
      return [el("div", {}, el("strong", { text: t("packs.ops.sop." + s.key) }), el("div.muted", { translate: "no", text: EP.userText(s.name) })),
        s.journey_id ? journeyLink(s.journey_id, s.status) : el("span", { text: t("packs.ops.not_installed_journey") }),
        el("span", { text: EP.eventLabel(s.goal) }), arm(s.treatment), arm(s.holdout),
        s.uplift === null ? "—" : pct(s.uplift) + (s.ci ? " [" + pct(s.ci[0]) + ", " + pct(s.ci[1]) + "]" : ""),
        s.p_value === null ? "—" : s.p_value.toFixed(3), act];
    });
    const heads = ["sop", "journey", "goal", "treatment", "holdout", "uplift", "p_value", "action"].map((k) => t("packs.ops.col." + k));
    node.replaceChildren(h.installed ? "" : notice("sops-not-installed", t("packs.ops.install_for_sops")),
      el("p.muted", { text: t("packs.ops.sops_about") }), el("div", { id: "sop-table" }, EP.table(heads, rows, "grid")));
  };

  R.supervision = function (h, node) {
    if (!h.tag_ready) { node.replaceChildren(notice("tag-not-ready", t("packs.tag_not_ready"))); return; }
    const tiers = el("div.stats", { id: "supervision-tiers" }, h.tiers.map((x) => el("div.stat", { "data-tier": x.tier },
      el("div.stat-value", { text: EP.fmt(x.students) }), el("div.stat-label", { text: tierName(x.tier) }))));
    const rows = h.students.map((s) => ({ who: who(s.identities, s.person_id), person_id: s.person_id, class_id: s.class_id,
      third_missed_at: when(s.third_missed_at), came_back: s.came_back, tier: s.tier }));
    const cols = [col("who", { user: true }), col("class_id", { user: true }), col("third_missed_at", { user: true }),
      col("came_back", { show: yes }), col("tier", { show: tierName })];
    const r = h.recall;
    const recall = el("div.card", { id: "recall-effect" }, el("h2", { text: t("packs.ops.recall_title") }),
      el("p", { text: t("packs.ops.recall_about") }),
      r ? el("div", {}, journeyLink(r.journey_id, r.status), " ", switchButton(r.journey_id, r.status, "recall_missed_3"),
        el("div.stats", {},
        stat(fill(t("packs.ops.came_back_of"), { n: EP.fmt(r.treated_came_back), of: EP.fmt(r.treated) }), t("packs.ops.treated")),
        stat(fill(t("packs.ops.came_back_of"), { n: EP.fmt(r.holdout_came_back), of: EP.fmt(r.holdout) }), t("packs.ops.held_out")),
        stat(r.uplift === null ? "—" : pct(r.uplift), t("packs.ops.col.uplift")),
        stat(r.p_value === null ? "—" : r.p_value.toFixed(3), t("packs.ops.col.p_value"))))
        : el("p.muted", { text: t("packs.ops.install_for_journey") }));
    node.replaceChildren(el("h2", { text: t("packs.ops.tiers") }), tiers, el("p.muted", { text: t("packs.ops.tiers_about") }),
      el("h2", { text: t("packs.at_risk_people") }),
      ...(rows.length ? [
        el("p", { id: "came-back-line", text: fill(t("packs.ops.came_back_line"), { n: EP.fmt(h.came_back), of: EP.fmt(h.at_risk),
          rate: pct(h.came_back_rate) }) }),
        el("div", { id: "missed-table" }, sortable(cols, rows)),
        el("ul.list", { id: "at-risk-list" }, h.persons.map((id) => el("li", {}, el("a", { href: "/people/" + id, translate: "no",
          text: "#" + id }))))] : [el("p.muted", { id: "no-missed", text: t("packs.ops.no_missed") })]), recall,
      ...(h.classes.length ? [el("h2", { text: t("packs.col.class_id") }), el("div", { id: "class-table" }, sortable(
        [{ key: "class_id", user: true }, { key: "students_at_risk" }],
        h.classes.map((c) => ({ class_id: c.class_id, students_at_risk: c.students }))))] : []));
  };

  R.renewal = function (h, node) {
    const tierCols = [col("tier", { show: tierName }), { key: "renewal_rate", show: pct }];
    const ending = h.ending.map((e) => ({ who: who(e.identities, e.person_id), course_id: e.course_id,
      progress: e.lessons_scheduled + " / " + e.lessons, ends_at: when(e.ends_at), estimated: e.estimated, tier: e.tier,
      score: e.score, reasons: reasons(e) }));
    const endCols = [col("who", { user: true }), { key: "course_id", user: true }, col("progress", { user: true }),
      col("ends_at", { user: true }), col("estimated", { show: yes }), col("tier", { show: tierName }),
      col("score", { show: score }), col("reasons", { user: true, wrap: true })];
    node.replaceChildren(modelState(h, "renewal-model") || "",
      el("h2", { text: fill(t("packs.ops.ending_title"), { n: EP.fmt(h.ending_soon) }) }),
      el("p.muted", { text: t("packs.ops.ending_about") }), el("div", { id: "ending-table" }, sortable(endCols, ending)),
      el("h2", { text: t("packs.ops.by_tier") }), el("p.muted", { text: t("packs.ops.by_tier_about") }),
      el("div", { id: "renewal-tier-table" }, sortable(tierCols, h.by_tier)),
      el("h2", { text: t("packs.courses") }), el("div", { id: "renewal-table" }, sortable(
        [{ key: "course_id", user: true }, { key: "renewal_rate", show: pct }], h.courses)));
  };
})();
