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
    if (data.report && data.report.view) {  // the display choices saved with the report
      q.$view = Object.assign({}, data.report.view);
      if (data.report.view.chart) $("chart-type").value = data.report.view.chart;
    }
    let lastResult = null, lastQuery = null, running = null, sequence = 0;
    const out = { chart: $("chart"), table: $("table") };
    const showJson = () => ($("query-json").textContent = JSON.stringify(EP.fields.clean(q), null, 2));
    const render = model && model.render ? model.render : EP.genericRender;
    const redraw = async () => {
      if (!lastResult) return;
      await render(lastResult, out, { chartType: $("chart-type").value, query: Object.assign({}, lastQuery, { $view: q.$view }) });
      document.body.dataset.redrawn = String(Date.now());
    };
    const changed = (opts) => { showJson(); if (opts && opts.redraw) redraw(); };
    const draw = () => {
      if (model) form.replaceChildren(...model.form(cat, q, changed).filter(Boolean));
      else form.replaceChildren(el("label.field", {}, el("span.field-label", { text: t("builder.query_json") }),
        el("textarea.json-input", { rows: 14, translate: "no", "data-testid": "json-input", oninput: (e) => {
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
      const mine = ++sequence;
      document.body.dataset.runStarted = String(mine);
      const query = EP.fields.clean(q);
      const started = Date.now();
      $("run").disabled = true;
      $("status").textContent = t("builder.running");
      const ticker = setInterval(() => ($("status").textContent = t("builder.running") + " " + ((Date.now() - started) / 1000).toFixed(0) + " " + t("builder.seconds")), 1000);
      EP.showError($("error"), "");
      try {
        const result = await EP.api("POST", "/api/v1/query", query, { signal: running.signal });
        lastResult = result;
        lastQuery = query;
        $("result-empty").hidden = true;
        const hasData = await render(result, out, { chartType: $("chart-type").value, query: Object.assign({}, query, { $view: q.$view }) });
        $("chart-type-box").hidden = !(model && model.chartTypes);
        if (!hasData) { $("result-empty").hidden = false; $("result-empty").textContent = t("builder.no_data"); }
        $("status").textContent = (result.timings ? result.timings.seconds + " " + t("builder.seconds") : "") + (result.cached ? " · " + t("builder.cached") : "");
        $("export-csv").disabled = false;
        $("export-png").disabled = out.chart.hidden;
      } catch (err) {
        if (err.name === "AbortError") return;
        EP.showError($("error"), err.message);
        $("status").textContent = "";
      } finally {
        clearInterval(ticker);
        if (mine === sequence) {
          $("run").disabled = false;
          document.body.dataset.resultReady = String(mine);
        }
      }
    }
    $("run").addEventListener("click", run);
    $("chart-type").addEventListener("change", redraw);
    $("copy-json").addEventListener("click", async () => {
      try { await navigator.clipboard.writeText($("query-json").textContent); EP.toast(t("builder.copied")); }
      catch (_) { window.getSelection().selectAllChildren($("query-json")); }
    });
    $("export-csv").addEventListener("click", () => EP.exportCsv(EP.fields.clean(q)).catch((err) => EP.showError($("error"), err.message)));
    $("export-png").addEventListener("click", () => EP.exportPng(out.chart, "edupulse-" + data.kind));
    $("save-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const dashboard = $("report-dashboard").value;
      const view = q.$view || {};
      const body = { name: $("report-name").value, query: EP.fields.clean(q),
        view: { sort: view.sort || "value_desc", hideOther: !!view.hideOther, chart: $("chart-type").value } };
      if (dashboard) body.dashboard_id = Number(dashboard);
      try {
        const saved = data.report && !dashboard ? await EP.api("PUT", "/api/v1/reports/" + data.report.id, body)
          : await EP.api("POST", "/api/v1/reports", body);
        data.report = saved;
        EP.toast(t("builder.saved") + ": " + saved.name);
        document.body.dataset.savedReport = String(saved.id);
      } catch (err) { EP.showError($("error"), err.message); }
    });
    // The analysis answers as soon as it is opened, as a saved report or a new one from its defaults.
    if (cat.events.length || data.report) await run();
  };

  // reports ------------------------------------------------------------------------------------
  P.reports = function () {
    // saved times are UTC: shown in the project's zone
    document.querySelectorAll("[data-time]").forEach((c) => (c.textContent = EP.time(/[zZ]|[+-]\d\d:\d\d$/.test(c.dataset.time) ? c.dataset.time : c.dataset.time + "Z")));
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

  // kinds whose queries have no date range: a dashboard's date filter leaves them as they are
  const UNDATED = new Set(["sql", "persons", "person", "segments"]);
  async function dashboardView(data, shared) {
    const d = data.dashboard;
    const grid = $("dash-grid");
    EP.userText(d.name);
    const tiles = d.items.map((item) => {
      const r = item.report;
      const chart = el("div.chart.tile-chart"), table = el("div.table-wrap", {}, el("span.muted", { text: t("common.loading") })), status = el("div.error", { hidden: true });
      const tile = el("section.card.tile", { style: "grid-column: span " + item.width, "data-report": r.id },
        el("header.tile-head", {}, shared ? el("h3", { translate: "no", text: EP.userText(r.name) }) : el("h3", { translate: "no" }, el("a", { href: "/analysis/" + r.kind + "?report=" + r.id, text: EP.userText(r.name) })),
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
            if ((range.date_from || range.date_to) && !UNDATED.has(q.kind)) q.date_range = EP.fields.clean(range);
            result = await EP.api("POST", "/api/v1/query", q);
          }
          const model = EP.kinds[tile.report.kind];
          const view = tile.report.view || {};
          await (model && model.render ? model.render : EP.genericRender)(result, tile.out,
            { query: Object.assign({}, tile.report.query, { $view: view }), chartType: view.chart });
          EP.showError(tile.status, "");
        } catch (err) { EP.showError(tile.status, err.message); }
      }));
      $("updated-at").textContent = EP.time(new Date(), true);
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    }
    let timer = null;
    const schedule = (seconds) => {
      clearInterval(timer);
      if (seconds >= 10) timer = setInterval(refresh, seconds * 1000);
    };
    if (!shared) await EP.catalogue();
    await refresh();
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
      $("share-link").replaceChildren(token ? el("a", { href: "/share/" + token, id: "share-url", translate: "no", text: location.origin + "/share/" + token }) : t("dashboard.share_none"));
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
  const IDENTITY_ORDER = ["login_id", "mobile", "email", "wechat_unionid", "crm_lead_id", "device_id", "anonymous_id"];
  EP.identityType = (type) => t("identity." + type, null) || EP.userText(type);
  /* The identity a person is best known by: a login id, then a phone, ... then any. */
  EP.mainIdentity = function (identities) {
    const list = (identities || []).slice().sort((a, b) => {
      const ra = IDENTITY_ORDER.indexOf(a.type), rb = IDENTITY_ORDER.indexOf(b.type);
      return (ra < 0 ? 99 : ra) - (rb < 0 ? 99 : rb);
    });
    return list[0] || null;
  };
  EP.personName = function (p) {
    const props = p.properties || {};
    if (props.name) return EP.userText(props.name);
    const main = EP.mainIdentity(p.identities);
    return main ? EP.userText(main.value) : "#" + p.person_id;
  };
  /* A property value in words: times (typed time properties come as epoch microseconds) in the project's
     zone, true/false in words, the rest as it is (user data). */
  EP.propertyValue = function (ref, value, cat) {
    if (value === null || value === undefined) return EP.t("result.not_set");
    const base = ref.replace(/^(event|person)\./, "");
    const info = cat && cat.properties.find((p) => p.name === base);
    if (info && info.type === "time") return EP.time(value);
    if (typeof value === "boolean") return t("common." + value);
    if (typeof value === "object") return EP.userText(JSON.stringify(value));
    return EP.userText(value);
  };

  P.people = async function (data) {
    const formNode = $("people-search");
    if (!formNode) return;
    const cat = await EP.catalogue();
    const columns = cat.person_properties.filter((p) => p.name !== "name").slice(0, 5).map((p) => p.name);
    const state = { text: data.q || "", segment: new URLSearchParams(location.search).get("segment") || "", order_by: null, descending: false, offset: 0 };
    let page = [];
    const selected = new Set();
    const query = (limit) => {
      const q = { kind: "persons", limit: limit || 50, offset: limit ? 0 : state.offset };
      const text = state.text;
      if (text.includes("=")) {
        const [prop, value] = text.split("=", 2);
        const name = prop.trim();
        q.filters = [{ property: name.startsWith("person.") ? name : "person." + name, op: "eq", value: value.trim() }];
      } else if (text) q.search = text;
      if (state.segment) q.filters = (q.filters || []).concat([{ segment: Number(state.segment) }]);
      if (state.order_by) { q.order_by = state.order_by; q.descending = state.descending; }
      return q;
    };
    // a personal property is not sortable for those who see it masked (the order would reveal it)
    const unsortable = new Set((data.personal || []).map((name) => "person." + name));
    const sortHeader = (ref, label) => unsortable.has(ref) ? el("span", { text: label }) : el("button.link.sort", { type: "button", "data-testid": "sort-" + ref,
      text: label + (state.order_by === ref ? (state.descending ? " ↓" : " ↑") : ""),
      onclick: () => { state.descending = state.order_by === ref ? !state.descending : false; state.order_by = ref; state.offset = 0; search(); } });
    const bulk = () => {
      $("people-bulk").hidden = selected.size === 0;
      $("people-selected").textContent = t("people.selected").replace("{n}", EP.fmt(selected.size));
    };
    async function search() {
      $("people-status").textContent = t("common.loading");
      try {
        const result = await EP.api("POST", "/api/v1/query", query());
        page = result.persons;
        $("people-status").textContent = t("people.count").replace("{n}", EP.fmt(result.total));
        $("people-status").dataset.total = String(result.total);
        $("people-pages").replaceChildren(
          el("button", { type: "button", text: t("common.previous"), disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - 50); search(); } }),
          el("span.muted", { text: t("people.range").replace("{from}", EP.fmt(result.persons.length ? state.offset + 1 : 0)).replace("{to}", EP.fmt(state.offset + result.persons.length)) }),
          el("button", { type: "button", text: t("common.next"), disabled: result.next_offset === null, onclick: () => { state.offset = result.next_offset; search(); } }));
        if (!result.persons.length) return $("people-results").replaceChildren(el("div.empty", { text: t("people.none") }));
        const all = el("input", { type: "checkbox", "data-testid": "select-all", title: t("people.select_all"), onchange: (e) => {
          page.forEach((p) => (e.target.checked ? selected.add(p.person_id) : selected.delete(p.person_id)));
          $("people-results").querySelectorAll("input[data-person]").forEach((b) => (b.checked = e.target.checked));
          bulk();
        } });
        $("people-results").replaceChildren(EP.table([all, sortHeader("person.name", t("people.person")), t("people.identity"),
          ...columns.map((c) => sortHeader("person." + c, EP.propertyLabel("person." + c)))],
        result.persons.map((p) => {
          const main = EP.mainIdentity(p.identities);
          const others = (p.identities || []).length - 1;
          return [el("input", { type: "checkbox", "data-person": p.person_id, checked: selected.has(p.person_id),
            onchange: (e) => { if (e.target.checked) selected.add(p.person_id); else selected.delete(p.person_id); bulk(); } }),
          el("a", { href: "/people/" + p.person_id, "data-testid": "person-link", translate: "no", text: EP.personName(p) }),
          main ? el("span.identity", {}, el("span.badge", { text: EP.identityType(main.type) }), " ", EP.u(main.value),
            others > 0 ? el("span.muted", { title: p.identities.map((i) => EP.identityType(i.type) + ": " + EP.userText(i.value)).join("\n"),
              text: " " + t("people.more_ids").replace("{n}", String(others)) }) : "") : "—",
          ...columns.map((c) => ({ text: EP.propertyValue("person." + c, (p.properties || {})[c], cat), user: true }))];
        }), "grid people-table"));
        bulk();
      } catch (err) { $("people-status").textContent = ""; EP.toast(err.message, true); }
    }
    formNode.addEventListener("submit", (e) => { e.preventDefault(); state.text = $("people-q").value.trim(); state.segment = $("people-segment").value; state.offset = 0; search(); });
    $("people-export").addEventListener("click", () => EP.exportCsv(query(1000)).catch((err) => EP.toast(err.message, true)));
    $("people-export-selected").addEventListener("click", () => {
      const rows = page.filter((p) => selected.has(p.person_id));
      const csv = ["person_id,name,identities," + columns.join(",")].concat(rows.map((p) => [p.person_id, (p.properties || {}).name || "",
        (p.identities || []).map((i) => i.type + ":" + i.value).join(" "), ...columns.map((c) => (p.properties || {})[c] ?? "")]
        .map((v) => '"' + String(v).replace(/"/g, '""') + '"').join(","))).join("\r\n");
      const url = URL.createObjectURL(new Blob(["\ufeff" + csv], { type: "text/csv" }));
      EP.download(url, "edupulse-persons.csv");
    });
    $("people-assign").addEventListener("click", async () => {
      const advisor = $("people-advisor").value;
      if (!advisor) return EP.toast(t("people.choose_advisor"), true);
      let done = 0;
      for (const p of page.filter((x) => selected.has(x.person_id))) {
        const main = EP.mainIdentity(p.identities);
        if (!main) continue;
        try { await EP.api("POST", "/api/v1/advisors/" + advisor + "/assignments", { id_type: main.type, id_value: main.value }); done++; }
        catch (err) { EP.toast(err.message, true); break; }
      }
      EP.toast(t("people.assigned").replace("{n}", EP.fmt(done)));
      document.body.dataset.assigned = String(done);
    });
    const loads = [EP.api("GET", "/api/v1/segments").then((found) => $("people-segment").append(...(found.segments || []).map((s) =>
      el("option", { value: s.id, text: EP.userText(s.name), translate: "no" })))).catch(() => { $("people-segment").closest("label").hidden = true; }),
    EP.api("GET", "/api/v1/users").then((found) => {
      const advisors = found.users.filter((u) => u.role === "advisor");
      $("people-advisor").append(...advisors.map((u) => el("option", { value: u.id, translate: "no", text: EP.userText(u.name || u.email) })));
      $("people-assign-box").hidden = !advisors.length;
    }).catch(() => { $("people-assign-box").hidden = true; })];
    await Promise.all(loads);
    $("people-segment").value = state.segment;
    await search();
  };

  P.person = async function (data) {
    const list = $("timeline");
    if (!list) return;
    const cat = await EP.catalogue();
    let cursor = null;
    async function page() {
      const query = { kind: "person", person_id: data.person_id, limit: 50 };
      if (cursor) query.cursor = cursor;
      try {
        const result = await EP.api("POST", "/api/v1/query", query);
        const p = result.person;
        $("person-name").textContent = EP.personName(p);
        document.title = EP.personName(p) + " · EduPulse";
        $("identities").replaceChildren(EP.table([t("person.identity_type"), t("person.identity_value")],
          (p.identities || []).map((i) => [EP.identityType(i.type), { text: i.value, user: true }])));
        $("properties").replaceChildren(EP.table([t("catalog.name"), t("person.value")], Object.entries(p.properties || {}).map(([k, v]) =>
          [EP.propertyLabel("person." + k), { text: EP.propertyValue("person." + k, v, cat), user: true }])));
        $("timeline-total").textContent = t("person.events_count").replace("{n}", EP.fmt(result.total_events));
        $("timeline-total").dataset.total = String(result.total_events);
        if (!result.events.length && !cursor) list.replaceChildren(el("li.empty", { text: t("person.no_events") }));
        // the groups of the events (school, class...) by their stored names
        const wanted = {}, names = {};
        for (const e of result.events) for (const [type, key] of Object.entries(e.groups || {})) (wanted[type] = wanted[type] || []).push(key);
        await Promise.all(Object.entries(wanted).map(async ([type, keys]) => (names[type] = await EP.groupNames(type, keys))));
        const prop = (label, value, attrs) => el("span.prop", {}, el("span.muted", { text: label + " " }),
          el("span", Object.assign({ translate: "no", text: value }, attrs)));
        for (const e of result.events)
          list.append(el("li", { "data-testid": "timeline-event" }, el("time", { datetime: e.time, text: EP.time(e.time, true) }),
            " ", EP.sourceTag ? EP.sourceTag(e.source) : "",
            el("strong", { text: " " + EP.eventLabel(e.event) + " " }),
            el("span.props", {},
              Object.entries(e.groups || {}).map(([type, key]) => prop(EP.propertyLabel("group." + type), EP.userText((names[type] || {})[key] || key), { "data-group": type })),
              Object.entries(e.properties || {}).map(([k, v]) => prop(EP.propertyLabel(k), EP.propertyValue(k, v, cat), { "data-property": k })))));
        cursor = result.next_cursor;
        $("timeline-more").hidden = !cursor;
      } catch (err) { EP.showError($("error"), err.message); }
    }
    $("timeline-more").addEventListener("click", page);
    await page();
  };

  // data catalogue -----------------------------------------------------------------------------
  P.catalog = async function () {
    let cat;
    try { cat = await EP.api("GET", "/api/v1/catalog"); cat.groups = cat.groups || []; EP.setTexts(cat); }
    catch (err) { $("catalog-status").textContent = ""; return EP.showError($("error"), err.message); }
    $("catalog-status").textContent = cat.events.length ? t("catalog.times_in").replace("{tz}", EP.userText(EP.tz)) : t("catalog.empty");
    /* Display name and description in both languages, edited in place by admins. */
    const texts = (kind, name, item) => {
      const label = kind === "event" ? EP.eventLabel(name) : EP.propertyLabel(name);
      const about = kind === "event" ? EP.eventAbout(name) : EP.propertyAbout(name);
      const shown = el("div", {}, el("strong", { text: label }), " ", el("code.muted", { translate: "no", text: name }),
        about ? el("div.small.muted", { text: about }) : "");
      if (!EP.boot.is_admin) return shown;
      const own = (item.texts || {});
      const inputs = {};
      const editor = el("div.catalog-editor", { hidden: true }, ["zh", "en"].map((lang) => el("div.inline", {},
        el("span.badge", { text: t("catalog.lang_" + lang) }),
        inputs[lang + "_name"] = el("input", { value: (own[lang] || {}).display_name || "", placeholder: t("catalog.display_name"), maxlength: 200, "data-testid": "name-" + lang + "-" + name }),
        inputs[lang + "_about"] = el("input.describe", { value: (own[lang] || {}).description || "", placeholder: t("catalog.description"), maxlength: 2000, "data-testid": "about-" + lang + "-" + name }))),
      el("button", { type: "button", text: t("catalog.save"), "data-testid": "save-" + name, onclick: async () => {
        try {
          for (const lang of ["zh", "en"])
            await EP.api("PUT", "/api/v1/catalog/descriptions", { kind: kind, name: name, lang: lang,
              display_name: inputs[lang + "_name"].value, description: inputs[lang + "_about"].value });
          EP.toast(t("builder.saved"));
          document.body.dataset.catalogSaved = name;
        } catch (err) { EP.toast(err.message, true); }
      } }));
      return el("div", {}, shown, el("button.link", { type: "button", text: t("catalog.edit"), "data-testid": "edit-" + name,
        onclick: () => (editor.hidden = !editor.hidden) }), editor);
    };
    const when = (s) => EP.time(s);
    $("catalog-events").replaceChildren(EP.table([t("catalog.name"), t("catalog.volume"), t("catalog.first_seen"), t("catalog.last_seen"), t("catalog.properties")],
      cat.events.map((e) => [texts("event", e.name, e), { text: e.volume, attrs: { "data-testid": "volume-" + e.name } },
        { text: when(e.first_seen), attrs: { "data-testid": "first-seen-" + e.name } }, when(e.last_seen),
        { text: e.properties.map((p) => EP.propertyLabel(p)).join(", "), cls: "wrap" }]), "grid catalog-table"));
    $("catalog-properties").replaceChildren(EP.table([t("catalog.name"), t("catalog.type"), t("catalog.volume"), t("catalog.first_seen"), t("catalog.last_seen"), t("catalog.on_events")],
      cat.properties.map((p) => [texts("property", p.name, p), t("type." + p.type, p.type) + (p.sampled ? " *" : ""), p.volume, when(p.first_seen), when(p.last_seen),
        { text: p.events.map((e) => EP.eventLabel(e)).join(", "), cls: "wrap" }]), "grid catalog-table"));
    $("catalog-person").replaceChildren(EP.table([t("catalog.name"), t("catalog.volume")],
      cat.person_properties.map((p) => [texts("property", "person." + p.name, p), p.volume]), "grid catalog-table"));
    $("catalog-groups").replaceChildren(...(cat.groups.length ? cat.groups.map((g) => el("section", {},
      el("h3", { text: EP.propertyLabel("group." + g.type) + " · " + t("catalog.group_count").replace("{n}", EP.fmt(g.count)) }),
      EP.table([t("catalog.name"), t("catalog.volume")], (g.properties || []).map((p) => [texts("property", "group." + g.type + "." + p.name, p), p.volume]), "grid catalog-table")))
      : [el("div.empty", { text: t("catalog.no_groups") })]));
  };

  // ingestion status ---------------------------------------------------------------------------
  P.ingestion = async function () {
    async function load() {
      try {
        const [stats, quarantine] = await Promise.all([EP.api("GET", "/api/v1/ingestion/stats?minutes=60"),
          EP.api("GET", "/api/v1/quarantine?limit=100")]);
        EP.chart($("per-minute"), { xAxis: { type: "category", data: stats.per_minute.map((m) => EP.time(m.minute).slice(11, 16)) },
          yAxis: { type: "value" }, series: [{ type: "bar", data: stats.per_minute.map((m) => m.events), name: t("home.events") }] });
        $("quarantine-total").textContent = "(" + EP.fmt(quarantine.total) + ")";
        $("quarantine").replaceChildren(quarantine.records.length ? EP.table([t("ingestion.received"), t("ingestion.source"), t("ingestion.location"), t("ingestion.reason"), t("ingestion.record")],
          quarantine.records.map((r) => [EP.time(r.received_at, true), { text: r.source, user: true }, { text: r.location, user: true },
            { text: r.reason, attrs: { class: "reason" }, user: true }, el("code", { translate: "no", text: r.record.slice(0, 200) })])) : el("div.empty", { text: t("ingestion.quarantine_empty") }));
        await EP.lrs.load();
        EP.showError($("error"), "");
      } catch (err) { EP.showError($("error"), err.message); }
    }
    await load();
    setInterval(load, 10000);
  };

  /* Each page's controller; body[data-ready] is set when its first data is drawn (tests and the
     translation checker wait for it). */
  document.addEventListener("DOMContentLoaded", () => {
    const page = P[EP.boot.page];
    Promise.resolve(page ? page(EP.boot.data) : null)
      .catch((err) => { document.body.dataset.failed = err.message; EP.toast(err.message, true); })
      .finally(() => (document.body.dataset.ready = "1"));
  });
})();
