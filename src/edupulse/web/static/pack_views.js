/* The pages of the referral, school accounts and one person packs (after packs.js, whose page calls these):
   the referral tree as a picture, the ledger and owners of each school, the sources of persons. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t;
  const { RENDER, sortable, stat, fill } = EP.packPage;
  const pct = (v) => EP.pct(v);
  const $ = (id) => document.getElementById(id);
  const asked = (name) => new URLSearchParams(location.search).get(name);

  // referral --------------------------------------------------------------------------------------

  /* ECharts' tree series from the API's nested nodes: a person's label is their login id (or #id). */
  const treeData = (node) => ({
    name: node.login_id || "#" + node.person_id, value: node.person_id,
    itemStyle: { color: node.paid ? "#2f7d32" : "#9e9e9e" },
    label: { fontWeight: node.children.length ? "bold" : "normal" },
    tooltip: { formatter: () => [(node.login_id || "#" + node.person_id), t("packs.col.revenue") + ": " + EP.fmt(node.revenue),
      t("packs.col.referees") + ": " + EP.fmt(node.referees), node.paid ? t("packs.referral.paid") : "",
      node.more ? t("packs.referral.more_below") : ""].filter(Boolean).join("<br>") },
    children: node.children.map(treeData),
  });

  async function drawTree(personId, depth) {
    const box = $("referral-tree");
    box.replaceChildren(el("p.muted", { text: t("packs.loading") }));
    box.dataset.person = String(personId);
    try {
      const tree = await EP.api("GET", "/api/v1/packs/referral/tree?person_id=" + encodeURIComponent(personId) + "&depth=" + depth);
      const who = el("a", { href: "/people/" + tree.root.person_id, translate: "no",
        text: EP.userText(tree.root.login_id || "#" + tree.root.person_id) });
      const chain = tree.referred_by.length ? el("span", {}, tree.referred_by.map((id, i) => el("span", {}, i ? " ← " : "",
        el("a", { href: "/scenarios/referral?person=" + id, translate: "no", "data-referrer": id, text: "#" + id }))))
        : el("span", { text: t("packs.referral.nobody") });
      const chart = el("div.chart", { id: "referral-tree-chart", style: "height:" + Math.max(320, Math.min(1600, tree.persons * 22)) + "px" });
      box.replaceChildren(el("h3", {}, t("packs.referral.tree_of") + ": ", who),
        el("p", { id: "referral-tree-sizes", "data-persons": tree.persons, "data-tree-size": tree.tree_size,
          text: fill(t("packs.referral.tree_sizes"), { shown: EP.fmt(tree.persons), size: EP.fmt(tree.tree_size) }) }),
        el("p", { id: "referral-brought-by" }, t("packs.referral.brought_by") + ": ", chain),
        tree.cycles_cut ? el("p.notice", { text: fill(t("packs.referral.cycles"), { n: tree.cycles_cut }) }) : "",
        tree.truncated ? el("p.notice", { text: t("packs.referral.truncated") }) : "", chart);
      const drawn = EP.chart(chart, { tooltip: { trigger: "item", confine: true },
        series: [{ type: "tree", data: [treeData(tree.root)], top: 20, bottom: 20, left: 80, right: 160, symbolSize: 10,
          orient: "LR", initialTreeDepth: -1, expandAndCollapse: false, roam: true,
          label: { position: "left", verticalAlign: "middle", align: "right" },
          leaves: { label: { position: "right", verticalAlign: "middle", align: "left" } } }] });
      if (drawn) drawn.on("click", (p) => { if (p.value) location.href = "/people/" + p.value; });
      box.dataset.drawn = String(Number(box.dataset.drawn || 0) + 1);
    } catch (err) { box.replaceChildren(el("div.error", { text: err.message })); }
  }

  RENDER.referral = function (h, node) {
    const depth = el("select", { id: "referral-depth" }, [1, 2, 3, 4, 5, 6].map((n) => el("option", { value: n, text: String(n), selected: n === 3 })));
    const show = (id) => drawTree(id, depth.value);
    const cols = [{ key: "referrer_id", user: true }, { key: "referees" }, { key: "revenue" }, { key: "revenue_share", show: pct },
      { key: "person_id", show: (id) => (id ? el("button.link", { type: "button", "data-tree": id, text: t("packs.referral.show_tree"),
        onclick: () => show(id) }) : "—") }];
    const rows = h.top_referrers.map((r) => Object.assign({}, r));
    node.replaceChildren(el("div.stats", {}, stat(pct(h.referral_conversion), t("packs.referral_conversion")),
      stat(pct(h.referred_revenue_share), t("packs.referral.revenue_share")),
      stat(EP.fmt(h.referred_revenue), t("packs.referral.referred_revenue"))),
      el("h2", { text: t("packs.top_referrers") }), el("div", { id: "referrer-table" }, sortable(cols, rows)),
      el("h2", { text: t("packs.referral.tree_title") }),
      el("p.inline-form", {}, el("label", {}, t("packs.referral.depth") + " ", depth)),
      el("div", { id: "referral-tree" }, el("p.muted", { text: t("packs.referral.tree_hint") })));
    depth.addEventListener("change", () => { if ($("referral-tree").dataset.person) show($("referral-tree").dataset.person); });
    const person = asked("person") || (rows[0] && rows[0].person_id);
    if (person) show(person);
  };

  // school accounts ---------------------------------------------------------------------------------

  const bar = (share) => el("span.progress", { title: pct(share) }, el("span.progress-fill",
    { style: "width:" + Math.max(0, Math.min(100, (share || 0) * 100)) + "%" }));
  const progress = (v) => (v === null || v === undefined ? "—" : el("span", {}, bar(v), " " + pct(v)));

  /* An admin's form for a school's owner, backup and targets (PUT .../account). */
  async function accountForm(school, done) {
    if (!(EP.boot.permissions || []).includes("members:manage")) return "";
    let users = [];
    try { users = (await EP.api("GET", "/api/v1/users")).users; } catch (err) { return el("div.error", { text: err.message }); }
    const pick = (id, chosen) => el("select", { id: id }, el("option", { value: "", text: "—" }), users.map((u) =>
      el("option", { value: u.id, translate: "no", text: EP.userText(u.name || u.email), selected: u.id === chosen })));
    const share = (id, v) => el("input", { id: id, type: "number", min: 1, max: 100, step: 1, value: v ? Math.round(v * 100) : "" });
    const owner = pick("account-owner", school.owner_id), backup = pick("account-backup", school.backup_id);
    const parents = share("account-parent-target", school.parent_target), teachers = share("account-teacher-target", school.teacher_target);
    const due = el("input", { id: "account-date", type: "date", value: school.target_date || "" });
    const error = el("div.error", { id: "account-error" });
    const form = el("form.card.inline-form", { id: "account-form" },
      el("label", {}, t("packs.school.owner") + " ", owner), el("label", {}, t("packs.school.backup") + " ", backup),
      el("label", {}, t("packs.school.parent_target") + " (%) ", parents), el("label", {}, t("packs.school.teacher_target") + " (%) ", teachers),
      el("label", {}, t("packs.school.target_date") + " ", due), el("button.primary", { type: "submit", text: t("packs.school.save") }), error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const num = (node) => (node.value ? Number(node.value) / 100 : null);
      const body = { owner_id: owner.value ? Number(owner.value) : null, backup_id: backup.value ? Number(backup.value) : null,
        parent_target: num(parents), teacher_target: num(teachers), target_date: due.value || null };
      try {
        await EP.api("PUT", "/api/v1/packs/school_accounts/schools/" + encodeURIComponent(school.school_id) + "/account", body);
        EP.toast(t("packs.school.saved"));
        done();
      } catch (err) { EP.showError(error, err.message); }
    });
    return form;
  }

  /* The ledger of one school: its size, adoption and usage week by week or month by month, and its people. */
  async function drawLedger(school, granularity, reload) {
    const box = $("school-ledger");
    box.replaceChildren(el("p.muted", { text: t("packs.loading") }));
    const params = new URLSearchParams({ granularity: granularity });
    const range = $("pack-range").value;
    if (range === "all") params.set("date_range", "all");
    if (range === "custom") {
      if ($("pack-from").value) params.set("date_from", $("pack-from").value);
      if ($("pack-to").value) params.set("date_to", $("pack-to").value);
    }
    try {
      const found = await EP.api("GET", "/api/v1/packs/school_accounts/schools/" + encodeURIComponent(school.school_id) + "/ledger?" + params);
      const chart = el("div.chart", { id: "ledger-chart", style: "height:300px" });
      const cols = [t("packs.school.period"), t("packs.col.students"), t("packs.col.teachers"), t("packs.col.active_parents"),
        t("packs.col.parent_adoption"), t("packs.col.active_teachers"), t("packs.col.teacher_adoption"), t("packs.school.page_views")];
      const rows = found.periods.map((p) => [{ text: p.period, user: true }, p.students, p.teachers, p.active_parents,
        pct(p.parent_adoption), p.active_teachers, pct(p.teacher_adoption), p.page_views]);
      const people = el("p", { id: "school-people" }, t("packs.school.owner") + ": ", EP.u(school.owner || "—"), " · ",
        t("packs.school.backup") + ": ", EP.u(school.backup || "—"));
      const target = school.parent_target ? el("p", { id: "school-target" }, fill(t("packs.school.target_line"), {
        active: pct(school.parent_adoption), target: pct(school.parent_target), date: school.target_date || "—" }), " ",
        progress(school.parent_progress)) : el("p.muted", { text: t("packs.school.no_target") });
      box.replaceChildren(el("h3", {}, t("packs.school.ledger_of") + ": ", EP.u(found.name || school.school_id), " ",
        el("span.muted", { translate: "no", text: "(" + school.school_id + ")" })),
        el("p", { id: "ledger-adoption", text: fill(t("packs.adoption_line"), { active: EP.fmt(school.active_parents), total: EP.fmt(school.students) }) }),
        people, target, await accountForm(school, reload), chart,
        el("div", { id: "ledger-table" }, EP.table(cols, rows)));
      EP.chart(chart, { legend: {}, xAxis: { type: "category", data: found.periods.map((p) => EP.userText(p.period)) },
        yAxis: [{ type: "value" }, { type: "value" }],
        series: [{ type: "bar", name: t("packs.school.page_views"), yAxisIndex: 1, data: found.periods.map((p) => p.page_views) },
          { type: "line", name: t("packs.col.active_parents"), data: found.periods.map((p) => p.active_parents) },
          { type: "line", name: t("packs.col.active_teachers"), data: found.periods.map((p) => p.active_teachers) }] });
      box.dataset.school = school.school_id;
      box.dataset.drawn = String(Number(box.dataset.drawn || 0) + 1);
    } catch (err) { box.replaceChildren(el("div.error", { text: err.message })); }
  }

  let lastSchool = asked("school");  // the school whose ledger is open (kept when the page reloads its numbers)

  RENDER.school_accounts = function (h, node) {
    const granularity = el("select", { id: "ledger-granularity" }, ["week", "month"].map((g) => el("option", { value: g, text: t("packs.school." + g) })));
    let current = null;
    const open = (row) => { current = row; lastSchool = row.school_id; drawLedger(row, granularity.value, () => $("pack-period").requestSubmit()); };
    const cols = [{ key: "school_id", show: (id) => el("button.link", { type: "button", "data-school": id, translate: "no", text: EP.userText(id),
      onclick: () => open(h.schools.find((s) => s.school_id === id)) }) }, { key: "tier", user: true }, { key: "students" }, { key: "teachers" },
      { key: "influence", user: true }, { key: "relationship", user: true }, { key: "active_parents" },
      { key: "parent_adoption", show: pct }, { key: "active_teachers" }, { key: "teacher_adoption", show: pct },
      { key: "owner", user: true }, { key: "backup", user: true }, { key: "parent_target", show: pct }, { key: "parent_progress", show: progress }];
    const parents = h.schools.reduce((n, s) => n + s.active_parents, 0), students = h.schools.reduce((n, s) => n + (s.students || 0), 0);
    granularity.addEventListener("change", () => { if (current) open(current); });
    node.replaceChildren(el("p", { id: "adoption-line", text: fill(t("packs.adoption_line"), { active: EP.fmt(parents), total: EP.fmt(students) }) }),
      el("h2", { text: t("packs.tier_counts") }), el("div.stats", {}, Object.entries(h.tiers).map(([tier, n]) =>
        el("div.stat", {}, el("div.stat-value", { text: EP.fmt(n) }), el("div.stat-label", { translate: "no", text: tier })))),
      el("h2", { text: t("packs.schools") }), el("div", { id: "school-table" }, sortable(cols, h.schools)),
      el("h2", { text: t("packs.school.ledger") }), el("p.inline-form", {}, el("label", {}, t("packs.school.by") + " ", granularity)),
      el("div", { id: "school-ledger" }, el("p.muted", { text: t("packs.school.ledger_hint") })));
    const first = h.schools.find((s) => s.school_id === lastSchool) || h.schools[0];
    if (first) open(first);
  };

  // one person --------------------------------------------------------------------------------------

  /* The source of a timeline event (queries/sources.py): the system that knows it, and the way it came. */
  EP.sourceTag = function (source) {
    if (!source) return "";
    const via = source.via === "xapi" ? "xAPI" : source.via === "api" ? t("source.via.api") : null;
    return el("span.tag.source", { "data-source": source.kind, "data-via": source.via }, t("source.kind." + source.kind), " · ",
      via !== null ? via : el("span", { translate: "no", text: EP.userText(source.name) }));
  };

  RENDER.one_person = function (h, node) {
    const cols = [{ key: "sources" }, { key: "persons" }, { key: "share", show: pct }];
    const rows = h.by_source.map((s) => ({ source: t("source.kind." + s.source), persons: s.persons, share: s.share, linked: s.linked }));
    const bySource = [{ key: "source" }, { key: "persons" }, { key: "share", show: pct }, { key: "linked" }];
    node.replaceChildren(el("h2", { text: t("packs.coverage") }), el("div", { id: "coverage-table" }, sortable(cols, h.coverage)),
      el("h2", { text: t("packs.person.by_source") }), el("div", { id: "source-table" }, sortable(bySource, rows, null)),
      el("p.muted", { text: t("packs.person.sources_about") }),
      el("p", {}, el("a", { href: "/people", text: t("packs.person_page") })));
  };
})();
