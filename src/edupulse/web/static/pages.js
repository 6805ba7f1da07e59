/* Page controllers: each page of the UI gets its data from the JSON API and draws it. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, P = EP.pages;
  const $ = (id) => document.getElementById(id);

  // analysis builder ---------------------------------------------------------------------------
  P.analysis = async function (data) {
    const model = EP.kinds[data.kind];
    const form = $("builder-form");
    if (!form) return;
    const cat = await EP.catalogue();
    const preset = new URLSearchParams(location.search).get("preset");
    let q = data.report ? JSON.parse(JSON.stringify(data.report.query)) : model ? model.defaults(cat, preset) : { kind: data.kind };
    let lastResult = null, running = null;
    const out = { chart: $("chart"), table: $("table") };
    const showJson = () => ($("query-json").textContent = JSON.stringify(EP.fields.clean(q), null, 2));
    const draw = () => {
      if (model) form.replaceChildren(...model.form(cat, q, showJson).filter(Boolean));
      else form.replaceChildren(el("label.field", {}, el("span.field-label", { text: t("builder.query_json") }),
        el("textarea.json-input", { rows: 14, "data-testid": "json-input", oninput: (e) => {
          try { q = JSON.parse(e.target.value); showJson(); EP.showError($("error"), ""); }
          catch (err) { EP.showError($("error"), err.message); }
        } }, JSON.stringify(q, null, 2))));
      showJson();
    };
    draw();
    if (!cat.events.length) $("result-empty").textContent = t("home.empty");

    async function run() {
      if (running) running.abort();
      running = new AbortController();
      const query = EP.fields.clean(q);
      const started = Date.now();
      $("run").disabled = true;
      $("status").textContent = t("builder.running");
      const ticker = setInterval(() => ($("status").textContent = t("builder.running") + " " + ((Date.now() - started) / 1000).toFixed(0) + " " + t("builder.seconds")), 1000);
      EP.showError($("error"), "");
      try {
        const result = await EP.api("POST", "/api/v1/query", query, { signal: running.signal });
        lastResult = result;
        $("result-empty").hidden = true;
        const render = model && model.render ? model.render : EP.genericRender;
        const hasData = render(result, out, { chartType: $("chart-type").value });
        $("chart-type-box").hidden = !(model && model.chartTypes);
        if (!hasData) { $("result-empty").hidden = false; $("result-empty").textContent = t("builder.no_data"); }
        $("status").textContent = (result.timings ? result.timings.seconds + " " + t("builder.seconds") : "") + (result.cached ? " · " + t("builder.cached") : "");
        $("export-csv").disabled = false;
        $("export-png").disabled = out.chart.hidden;
        document.body.dataset.resultReady = String(Date.now());
      } catch (err) {
        if (err.name === "AbortError") return;
        EP.showError($("error"), err.message);
        $("status").textContent = "";
      } finally {
        clearInterval(ticker);
        $("run").disabled = false;
      }
    }
    $("run").addEventListener("click", run);
    $("chart-type").addEventListener("change", () => {
      if (lastResult && model && model.render) model.render(lastResult, out, { chartType: $("chart-type").value });
    });
    $("copy-json").addEventListener("click", async () => {
      try { await navigator.clipboard.writeText($("query-json").textContent); EP.toast(t("builder.copied")); }
      catch (_) { window.getSelection().selectAllChildren($("query-json")); }
    });
    $("export-csv").addEventListener("click", () => EP.exportCsv(EP.fields.clean(q)).catch((err) => EP.showError($("error"), err.message)));
    $("export-png").addEventListener("click", () => EP.exportPng(out.chart, "edupulse-" + data.kind));
    $("save-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const dashboard = $("report-dashboard").value;
      const body = { name: $("report-name").value, query: EP.fields.clean(q) };
      if (dashboard) body.dashboard_id = Number(dashboard);
      try {
        const saved = data.report && !dashboard ? await EP.api("PUT", "/api/v1/reports/" + data.report.id, body)
          : await EP.api("POST", "/api/v1/reports", body);
        data.report = saved;
        EP.toast(t("builder.saved") + ": " + saved.name);
        document.body.dataset.savedReport = String(saved.id);
      } catch (err) { EP.showError($("error"), err.message); }
    });
    if (data.report || preset) run();
  };

  // reports ------------------------------------------------------------------------------------
  P.reports = function () {
    document.querySelectorAll("[data-delete-report]").forEach((b) => b.addEventListener("click", async () => {
      try { await EP.api("DELETE", "/api/v1/reports/" + b.dataset.deleteReport); b.closest("tr").remove(); }
      catch (err) { EP.toast(err.message, true); }
    }));
  };

  // dashboards ---------------------------------------------------------------------------------
  P.dashboards = function () {
    $("new-dashboard").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const d = await EP.api("POST", "/api/v1/dashboards", { name: $("dashboard-name").value });
        location.href = "/dashboards/" + d.id;
      } catch (err) { EP.toast(err.message, true); }
    });
  };

  function dashboardView(data, shared) {
    const d = data.dashboard;
    const grid = $("dash-grid");
    const tiles = d.items.map((item) => {
      const r = item.report;
      const chart = el("div.chart.tile-chart"), table = el("div.table-wrap", {}, el("span.muted", { text: t("common.loading") })), status = el("div.error", { hidden: true });
      const tile = el("section.card.tile", { style: "grid-column: span " + item.width, "data-report": r.id },
        el("header.tile-head", {}, shared ? el("h3", { text: r.name }) : el("h3", {}, el("a", { href: "/analysis/" + r.kind + "?report=" + r.id, text: r.name })),
          shared ? null : el("button.link.danger", { type: "button", text: t("dashboard.remove"), onclick: async () => {
            await EP.api("DELETE", "/api/v1/dashboards/" + d.id + "/items/" + r.id); tile.remove(); } })),
        status, chart, table);
      grid.append(tile);
      return { report: r, out: { chart: chart, table: table }, status: status };
    });
    let range = { date_from: d.date_from, date_to: d.date_to };
    async function refresh() {
      await Promise.all(tiles.map(async (tile) => {
        try {
          let result;
          if (shared) result = await EP.api("GET", "/api/v1/share/" + data.token + "/reports/" + tile.report.id);
          else {
            const q = JSON.parse(JSON.stringify(tile.report.query));
            if (range.date_from || range.date_to) q.date_range = EP.fields.clean(range);
            result = await EP.api("POST", "/api/v1/query", q);
          }
          const model = EP.kinds[tile.report.kind];
          (model && model.render ? model.render : EP.genericRender)(result, tile.out, {});
          EP.showError(tile.status, "");
        } catch (err) { EP.showError(tile.status, err.message); }
      }));
      $("updated-at").textContent = new Date().toLocaleTimeString();
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    }
    let timer = null;
    const schedule = (seconds) => {
      clearInterval(timer);
      if (seconds >= 10) timer = setInterval(refresh, seconds * 1000);
    };
    refresh();
    schedule(d.refresh_seconds || 0);
    if (shared) return;
    const save = () => EP.api("PUT", "/api/v1/dashboards/" + d.id, { name: d.name,
      refresh_seconds: Number($("refresh").value) || null, date_from: $("dash-from").value || null, date_to: $("dash-to").value || null });
    $("refresh").addEventListener("change", async () => {
      try { await save(); schedule(Number($("refresh").value)); } catch (err) { EP.toast(err.message, true); }
    });
    $("dash-apply").addEventListener("click", async () => {
      range = { date_from: $("dash-from").value || null, date_to: $("dash-to").value || null };
      try { await save(); refresh(); } catch (err) { EP.toast(err.message, true); }
    });
    const showShare = (token) => {
      $("share-link").replaceChildren(token ? el("a", { href: "/share/" + token, id: "share-url", text: location.origin + "/share/" + token }) : t("dashboard.share_none"));
      $("share-withdraw").hidden = !token;
    };
    showShare(d.share_token);
    $("share-create").addEventListener("click", async () => {
      try { showShare((await EP.api("POST", "/api/v1/dashboards/" + d.id + "/share", { enabled: true })).share_token); }
      catch (err) { EP.toast(err.message, true); }
    });
    $("share-withdraw").addEventListener("click", async () => {
      try { await EP.api("POST", "/api/v1/dashboards/" + d.id + "/share", { enabled: false }); showShare(null); }
      catch (err) { EP.toast(err.message, true); }
    });
  }
  P.dashboard = (data) => dashboardView(data, false);
  P.shared = (data) => dashboardView(data, true);

  // people -------------------------------------------------------------------------------------
  P.people = function (data) {
    const formNode = $("people-search");
    if (!formNode) return;
    async function search(text) {
      $("people-status").textContent = t("common.loading");
      const query = { kind: "persons", limit: 50 };
      if (text.includes("=")) {
        const [prop, value] = text.split("=", 2);
        const name = prop.trim();
        query.filters = [{ property: name.startsWith("person.") ? name : "person." + name, op: "eq", value: value.trim() }];
      } else if (text) query.search = text;
      const segment = $("people-segment").value;
      if (segment) query.filters = (query.filters || []).concat([{ segment: Number(segment) }]);
      try {
        const result = await EP.api("POST", "/api/v1/query", query);
        $("people-status").textContent = EP.fmt(result.total);
        if (!result.persons.length) return $("people-results").replaceChildren(el("div.empty", { text: t("people.none") }));
        $("people-results").replaceChildren(EP.table(["#", t("person.identities"), t("person.properties")],
          result.persons.map((p) => [el("a", { href: "/people/" + p.person_id, text: "#" + p.person_id, "data-testid": "person-link" }),
            (p.identities || []).map((i) => (i.type || i.id_type) + ": " + (i.value || i.id_value)).join(", "),
            Object.entries(p.properties || {}).slice(0, 6).map(([k, v]) => k + "=" + v).join(", ")])));
      } catch (err) { $("people-status").textContent = ""; EP.toast(err.message, true); }
    }
    formNode.addEventListener("submit", (e) => { e.preventDefault(); search($("people-q").value.trim()); });
    EP.api("GET", "/api/v1/segments").then((found) => $("people-segment").append(...(found.segments || []).map((s) =>
      el("option", { value: s.id, text: s.name })))).catch(() => { $("people-segment").closest("label").hidden = true; });
    if (data.q) search(data.q);
  };

  P.person = async function (data) {
    const list = $("timeline");
    if (!list) return;
    let cursor = null;
    async function page() {
      const query = { kind: "person", person_id: data.person_id, limit: 50 };
      if (cursor) query.cursor = cursor;
      try {
        const result = await EP.api("POST", "/api/v1/query", query);
        const p = result.person;
        $("identities").replaceChildren(EP.table(["type", "value"], (p.identities || []).map((i) => [i.type || i.id_type, i.value || i.id_value])));
        $("properties").replaceChildren(EP.table([t("catalog.name"), "value"], Object.entries(p.properties || {}).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v])));
        $("timeline-total").textContent = "(" + EP.fmt(result.total_events) + ")";
        if (!result.events.length && !cursor) list.replaceChildren(el("li.empty", { text: t("person.no_events") }));
        for (const e of result.events)
          list.append(el("li", { "data-testid": "timeline-event" }, el("time", { text: e.time.replace("T", " ").slice(0, 19) }),
            el("strong", { text: " " + e.event + " " }),
            el("span.muted", { text: Object.entries(e.properties || {}).map(([k, v]) => k + "=" + v).join("  ") })));
        cursor = result.next_cursor;
        $("timeline-more").hidden = !cursor;
      } catch (err) { EP.showError($("error"), err.message); }
    }
    $("timeline-more").addEventListener("click", page);
    page();
  };

  // data catalogue -----------------------------------------------------------------------------
  P.catalog = async function () {
    let cat;
    try { cat = await EP.api("GET", "/api/v1/catalog"); }
    catch (err) { $("catalog-status").textContent = ""; return EP.showError($("error"), err.message); }
    $("catalog-status").textContent = cat.events.length ? "" : t("catalog.empty");
    const when = (s) => (s ? s.replace("T", " ").slice(0, 16) : "—");
    const describe = (kind, name, text) => {
      if (!EP.boot.is_admin) return text || "";
      const input = el("input.describe", { value: text || "", maxlength: 2000, "data-testid": "describe-" + name });
      return el("span.inline", {}, input, el("button", { type: "button", text: t("catalog.save"), onclick: async () => {
        try { await EP.api("PUT", "/api/v1/catalog/descriptions", { kind: kind, name: name, description: input.value }); EP.toast(t("builder.saved")); }
        catch (err) { EP.toast(err.message, true); }
      } }));
    };
    $("catalog-events").replaceChildren(EP.table([t("catalog.name"), t("catalog.volume"), t("catalog.first_seen"), t("catalog.last_seen"), t("catalog.properties"), t("catalog.description")],
      cat.events.map((e) => [el("a", { href: "/analysis/trends", text: e.name }), { text: e.volume, attrs: { "data-testid": "volume-" + e.name } },
        when(e.first_seen), when(e.last_seen), e.properties.join(", "), describe("event", e.name, e.description)])));
    $("catalog-properties").replaceChildren(EP.table([t("catalog.name"), t("catalog.type"), t("catalog.volume"), t("catalog.first_seen"), t("catalog.last_seen"), t("catalog.on_events"), t("catalog.description")],
      cat.properties.map((p) => [p.name, p.type + (p.sampled ? " *" : ""), p.volume, when(p.first_seen), when(p.last_seen), p.events.join(", "), describe("property", p.name, p.description)])));
    $("catalog-person").replaceChildren(EP.table([t("catalog.name"), t("catalog.volume"), t("catalog.description")],
      cat.person_properties.map((p) => ["person." + p.name, p.volume, describe("property", "person." + p.name, p.description)])));
  };

  // ingestion status ---------------------------------------------------------------------------
  P.ingestion = async function () {
    async function load() {
      try {
        const [stats, quarantine] = await Promise.all([EP.api("GET", "/api/v1/ingestion/stats?minutes=60"),
          EP.api("GET", "/api/v1/quarantine?limit=100")]);
        EP.chart($("per-minute"), { xAxis: { type: "category", data: stats.per_minute.map((m) => m.minute.slice(11, 16)) },
          yAxis: { type: "value" }, series: [{ type: "bar", data: stats.per_minute.map((m) => m.events), name: t("home.events") }] });
        $("quarantine-total").textContent = "(" + EP.fmt(quarantine.total) + ")";
        $("quarantine").replaceChildren(quarantine.records.length ? EP.table([t("ingestion.received"), t("ingestion.source"), t("ingestion.location"), t("ingestion.reason"), t("ingestion.record")],
          quarantine.records.map((r) => [r.received_at.replace("T", " ").slice(0, 19), r.source, r.location,
            { text: r.reason, attrs: { class: "reason" } }, el("code", { text: r.record.slice(0, 200) })])) : el("div.empty", { text: t("ingestion.quarantine_empty") }));
        EP.showError($("error"), "");
      } catch (err) { EP.showError($("error"), err.message); }
    }
    load();
    setInterval(load, 10000);
  };

  document.addEventListener("DOMContentLoaded", () => {
    const page = P[EP.boot.page];
    if (page) Promise.resolve(page(EP.boot.data)).catch((err) => EP.toast(err.message, true));
  });
})();
