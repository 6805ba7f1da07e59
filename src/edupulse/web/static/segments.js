/* The segment builder: conditions on what persons did (events, with counts and a window) and on their
   properties, combined with all / any; the number of members is counted live while the definition changes. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, P = EP.pages;
  const $ = (id) => document.getElementById(id);
  /* The segment page's builder is the shared condition builder (conditions.js) on the segment grammar. */
  const context = (lists) => Object.assign({}, lists, { kinds: ["event", "property", "segment", "tag"], prefix: "cond", properties: "person",
    ids: { combine: "combine", add: "add-condition" } });
  const definition = (state, ctx) => {
    const condition = EP.conditions.json(state, ctx);
    return condition ? { condition: condition } : null;
  };

  P.segments = async function (data) {
    const lists = await EP.conditions.lists();
    const ctx = context(lists);
    const state = { combine: "and", items: [EP.conditions.blank("event", ctx)] };
    let counter = 0;
    const count = EP.debounce(async () => {
      const def = definition(state, ctx);
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
    const changed = () => count();
    const draw = () => $("segment-conditions").replaceChildren(EP.conditions.editor(state, changed, ctx));
    async function list() {
      const saved = (ctx.segments = (await EP.api("GET", "/api/v1/segments")).segments || []);
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
      const def = definition(state, ctx);
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
