/* The Learning Record Store card of the ingestion page: the xAPI endpoint and how to connect, what it holds,
   the verbs used most (a click shows only that verb's statements) and the latest statements with their JSON. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t;
  const $ = (id) => document.getElementById(id);
  const state = { verb: null, open: new Set() };  // open: the statements whose JSON is shown (kept on refresh)

  /* A language map's text in the page's language (then English, then any), or `fallback`. */
  function inLang(map, fallback) {
    const entries = Object.entries(map || {});
    const zh = (document.documentElement.lang || "").startsWith("zh");
    const pick = (prefix) => entries.find(([tag]) => tag.toLowerCase().startsWith(prefix));
    const found = pick(zh ? "zh" : "en") || pick(zh ? "en" : "zh") || entries[0];
    return found ? found[1] : fallback;
  }
  /* Show another verb's statements (null: all); a failure shows in the page's error box. */
  const filter = (verb) => { state.verb = verb; EP.lrs.load().catch((err) => EP.showError($("error"), err.message)); };
  const tail = (iri) => String(iri).replace(/[/#]+$/, "").split(/[/#]/).pop() || String(iri);

  function numbers(s, refused) {
    const item = (key, value, id) => [el("dt", { text: t(key) }), el("dd", { "data-testid": id }, value)];
    const why = refused ? el("a", { href: "/admin/quarantine?source=xapi", "data-testid": "lrs-refused-link" },
      t("lrs.refused_link").replace("{n}", EP.fmt(refused))) : EP.fmt(0);
    const total = EP.fmt(s.statements) + (s.voided ? " " + t("lrs.voided_count").replace("{n}", EP.fmt(s.voided)) : "");
    return el("dl.kv", {}, item("lrs.statements", total, "lrs-statements"), item("lrs.last_stored", EP.time(s.last_stored, true), "lrs-last"),
      item("lrs.refused", why, "lrs-refused"), item("lrs.activities", EP.fmt(s.activities), "lrs-activities"),
      item("lrs.documents", t("lrs.documents_count").replace("{state}", EP.fmt(s.documents.state))
        .replace("{activity}", EP.fmt(s.documents.activity_profile)).replace("{agent}", EP.fmt(s.documents.agent_profile)), "lrs-documents"));
  }

  function verbs(s) {
    return EP.table([t("lrs.verb"), t("lrs.statements")], s.verbs.map((v) => [
      el("button.link", { type: "button", title: EP.userText(v.verb), "data-testid": "lrs-verb", onclick: () => filter(v.verb) },
        EP.u(inLang(v.display, tail(v.verb)))), v.statements]));
  }

  function recent(s) {
    if (!s.recent.length) return el("div.empty", { text: t("lrs.none_of_verb") });
    return EP.table([t("lrs.stored"), t("lrs.actor"), t("lrs.verb"), t("lrs.object"), t("lrs.event"), ""], s.recent.map((r) => [
      EP.time(r.stored, true), { text: r.actor, user: true }, { text: inLang(r.verb_display, tail(r.verb)), user: true, title: EP.userText(r.verb) },
      { text: inLang(r.object_name, r.object), user: true, title: EP.userText(r.object) },
      r.event ? el("span", { title: EP.userText(r.event) }, EP.eventLabel(r.event)) : "—",
      el("span", {}, r.voided ? el("span.badge", { text: t("lrs.voided") }) : null,
        r.statement ? el("details", { open: state.open.has(r.id), ontoggle: (e) => state.open[e.target.open ? "add" : "delete"](r.id) },
          el("summary", { text: t("lrs.json") }),
          el("pre", { translate: "no", text: JSON.stringify(r.statement, null, 1) })) : null)]), "grid lrs-recent");
  }

  EP.lrs = {
    load: async function () {
      const query = "/api/v1/xapi/summary?limit=20" + (state.verb ? "&verb=" + encodeURIComponent(state.verb) : "");
      const found = await EP.api("GET", query);
      const s = found.summary;
      $("lrs-endpoint").textContent = found.endpoint;
      $("lrs-numbers").replaceChildren(numbers(s, found.refused));
      $("lrs-empty").hidden = s.statements > 0;
      $("lrs-data").hidden = s.statements === 0;
      $("lrs-verbs").replaceChildren(verbs(s));
      $("lrs-window").textContent = t("lrs.verbs_window").replace("{n}", EP.fmt(s.verbs_of_latest));
      const shown = s.verbs.find((v) => v.verb === state.verb);
      $("lrs-filter").replaceChildren(...(state.verb ? [t("lrs.only"), " ", EP.u(shown ? inLang(shown.display, tail(state.verb)) : tail(state.verb)), " ",
        el("button.link", { type: "button", "data-testid": "lrs-all", text: t("lrs.all_verbs"), onclick: () => filter(null) })] : []));
      $("lrs-recent").replaceChildren(recent(s));
    },
  };
})();
