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

  RENDER.school_accounts = function (h, node) {
    const cols = [{ key: "school_id", user: true }, { key: "tier", user: true }, { key: "students" }, { key: "teachers" },
      { key: "influence", user: true }, { key: "relationship", user: true }, { key: "active_parents" },
      { key: "parent_adoption", show: pct }, { key: "active_teachers" }, { key: "teacher_adoption", show: pct }];
    const parents = h.schools.reduce((n, s) => n + s.active_parents, 0), students = h.schools.reduce((n, s) => n + (s.students || 0), 0);
    node.replaceChildren(el("p", { id: "adoption-line", text: fill(t("packs.adoption_line"), { active: EP.fmt(parents), total: EP.fmt(students) }) }),
      el("h2", { text: t("packs.tier_counts") }), el("div.stats", {}, Object.entries(h.tiers).map(([tier, n]) =>
        el("div.stat", {}, el("div.stat-value", { text: EP.fmt(n) }), el("div.stat-label", { translate: "no", text: tier })))),
      el("h2", { text: t("packs.schools") }), el("div", { id: "school-table" }, sortable(cols, h.schools)));
  };

  // one person --------------------------------------------------------------------------------------

  RENDER.one_person = function (h, node) {
    const cols = [{ key: "sources" }, { key: "persons" }, { key: "share", show: pct }];
    node.replaceChildren(el("h2", { text: t("packs.coverage") }), el("div", { id: "coverage-table" }, sortable(cols, h.coverage)),
      el("p", {}, el("a", { href: "/people", text: t("packs.person_page") })));
  };
})();
