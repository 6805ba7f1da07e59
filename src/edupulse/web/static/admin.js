/* Admin pages: members and roles, personal API keys, the audit log, account lifecycle, the metric catalogue
   and the quarantine. Each page draws into #admin-root from the governance API. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, P = EP.pages;
  const $ = (id) => document.getElementById(id);
  const ROLES = ["admin", "analyst", "viewer", "advisor"];
  const can = (permission) => (EP.boot.permissions || []).includes(permission);
  const root = () => $("admin-root");
  const fail = (err) => EP.showError($("error"), err.message);
  const section = (title, ...children) => el("section.card", {}, title ? el("h2", { text: title }) : null, ...children);
  const csvOf = (columns, rows) => "\ufeff" + [columns, ...rows].map((r) => r.map((v) =>
    '"' + String(v === null || v === undefined ? "" : v).replace(/"/g, '""') + '"').join(",")).join("\r\n");
  function saveCsv(name, columns, rows) {
    const url = URL.createObjectURL(new Blob([csvOf(columns, rows)], { type: "text/csv" }));
    EP.download(url, name);
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  const roleWord = (r) => (r ? t("role." + r) : "—");

  // members and roles ----------------------------------------------------------------------------
  P["admin-members"] = async function (data) {
    const list = el("div.table-wrap");
    async function load() {
      const found = await EP.api("GET", "/api/v1/users");
      list.replaceChildren(EP.table([t("members.email"), t("members.name"), t("members.role"), t("members.status"), t("members.last_login"), t("members.actions")],
        found.users.map((u) => {
          const role = el("select", { "data-testid": "role-" + u.email, disabled: u.superuser, onchange: async (e) => {
            try { await EP.api("PUT", "/api/v1/users/" + u.id + "/role", { role: e.target.value }); EP.toast(t("builder.saved")); document.body.dataset.roleSaved = u.email; }
            catch (err) { fail(err); }
          } }, ROLES.map((r) => el("option", { value: r, text: roleWord(r), selected: r === u.role })));
          const toggle = el("button", { type: "button", text: u.disabled ? t("members.enable") : t("members.disable"), disabled: u.id === data.user_id,
            "data-testid": "toggle-" + u.email, onclick: async () => {
              try { await EP.api("POST", "/api/v1/users/" + u.id + (u.disabled ? "/enable" : "/disable")); await load(); } catch (err) { fail(err); }
            } });
          const remove = el("button.link.danger", { type: "button", text: t("members.remove"), disabled: u.id === data.user_id || u.superuser, onclick: async () => {
            if (!confirm(t("members.remove_confirm").replace("{email}", u.email))) return;
            try { await EP.api("PUT", "/api/v1/users/" + u.id + "/role", { role: null }); await load(); } catch (err) { fail(err); }
          } });
          return [{ text: u.email, user: true }, { text: u.name || "", user: true },
            u.superuser ? el("span.badge", { text: t("members.superuser") }) : role,
            u.disabled ? el("span.badge.danger", { text: t("members.disabled") }) : t("members.active"),
            EP.time(u.last_login_at), el("span.inline", {}, toggle, remove)];
        }), "grid members-table"));
    }
    const form = el("form.card.inline-form", { id: "member-form", onsubmit: async (e) => {
      e.preventDefault();
      const f = e.target;
      try {
        await EP.api("POST", "/api/v1/users", { email: f.email.value, name: f.name.value, password: f.password.value, role: f.role.value });
        f.reset(); EP.toast(t("builder.saved")); await load();
      } catch (err) { fail(err); }
    } },
    el("label", {}, t("members.email"), el("input", { name: "email", type: "email", required: true })),
    el("label", {}, t("members.name"), el("input", { name: "name" })),
    el("label", {}, t("members.password"), el("input", { name: "password", type: "password", required: true, minlength: 8 })),
    el("label", {}, t("members.role"), el("select", { name: "role" }, ROLES.map((r) => el("option", { value: r, text: roleWord(r), selected: r === "analyst" })))),
    el("button.primary", { type: "submit", text: t("members.add") }));
    root().replaceChildren(section(t("members.add_title"), form), section(t("members.list"), list),
      section(t("members.roles_title"), el("p.muted", { text: t("members.roles_about") })));
    await load();
  };

  // personal API keys ----------------------------------------------------------------------------
  P["admin-keys"] = async function () {
    const mine = el("div.table-wrap"), everyone = el("div.table-wrap"), shown = el("div");
    const keyRows = (keys, withOwner) => EP.table([t("keys.name"), ...(withOwner ? [t("keys.owner")] : []), t("keys.prefix"), t("keys.scopes"),
      t("keys.created"), t("keys.last_used"), t("keys.state"), ""], keys.map((k) => [{ text: k.name, user: true },
      ...(withOwner ? [{ text: "#" + k.user_id }] : []), el("code", { translate: "no", text: k.prefix + "…" }),
      k.scopes.map((s) => t("scope." + s, s)).join(", "), EP.time(k.created_at), EP.time(k.last_used_at),
      k.revoked ? t("keys.revoked") : t("keys.active"),
      k.revoked ? "" : el("button.link.danger", { type: "button", text: t("keys.revoke"), "data-testid": "revoke-" + k.id, onclick: async () => {
        try { await EP.api("DELETE", "/api/v1/keys/" + k.id); await load(); } catch (err) { fail(err); }
      } })]), "grid keys-table");
    async function load() {
      mine.replaceChildren(keyRows((await EP.api("GET", "/api/v1/keys")).keys, false));
      if (can("keys:manage")) everyone.replaceChildren(keyRows((await EP.api("GET", "/api/v1/keys?all=true")).keys, true));
    }
    const form = el("form.card.inline-form", { id: "key-form", onsubmit: async (e) => {
      e.preventDefault();
      const f = e.target;
      const scopes = ["query", "admin"].filter((s) => f["scope_" + s].checked);
      try {
        const made = await EP.api("POST", "/api/v1/keys", { name: f.name.value || "key", scopes: scopes });
        shown.replaceChildren(el("div.notice", {}, t("keys.shown_once"), " ", el("code", { id: "new-key", translate: "no", text: made.key })));
        f.reset(); await load();
      } catch (err) { fail(err); }
    } },
    el("label", {}, t("keys.name"), el("input", { name: "name", maxlength: 100 })),
    el("label.check", {}, el("input", { type: "checkbox", name: "scope_query", checked: true }), t("scope.query")),
    el("label.check", {}, el("input", { type: "checkbox", name: "scope_admin" }), t("scope.admin")),
    el("button.primary", { type: "submit", text: t("keys.create") }));
    root().replaceChildren(section(t("keys.create_title"), form, shown), section(t("keys.mine"), mine),
      can("keys:manage") ? section(t("keys.everyone"), everyone) : "");
    await load();
  };

  // audit log ------------------------------------------------------------------------------------
  P["admin-audit"] = async function (data) {
    const list = el("div.table-wrap");
    let entries = [];
    const filters = el("form.card.inline-form", { id: "audit-filter", onsubmit: (e) => { e.preventDefault(); load(); } },
      el("label", {}, t("audit.action"), el("select", { name: "action", "data-testid": "audit-action" },
        [["", t("audit.any")], ...["auth.", "user.", "key.", "metric.", "lifecycle.", "segment.", "export"].map((a) => [a, t("audit.group." + a.replace(".", ""))])]
          .map(([v, l]) => el("option", { value: v, text: l })))),
      el("label", {}, t("audit.target"), el("input", { name: "target", "data-testid": "audit-target" })),
      el("label", {}, t("audit.since"), el("input", { name: "since", type: "date" })),
      el("label", {}, t("audit.until"), el("input", { name: "until", type: "date" })),
      data.superuser ? el("label.check", {}, el("input", { type: "checkbox", name: "everything" }), t("audit.everything")) : "",
      el("button.primary", { type: "submit", text: t("audit.apply") }),
      el("button", { type: "button", id: "audit-export", text: t("audit.export"), onclick: () => saveCsv("edupulse-audit.csv",
        ["id", "at", "actor", "action", "target", "project_id", "client", "detail"],
        entries.map((e) => [e.id, e.at, e.actor, e.action, e.target, e.project_id, e.client, JSON.stringify(e.detail || {})])) }));
    async function load() {
      const f = filters;
      const params = new URLSearchParams({ limit: "500" });
      if (f.action.value) params.set("action", f.action.value);
      if (f.target.value) params.set("target", f.target.value);
      // the dates are whole days in the project's time zone: local midnight as an instant
      const instant = (day) => new Date(day + "T00:00:00").toISOString();
      if (f.since.value) params.set("since", instant(f.since.value));
      if (f.until.value) params.set("until", new Date(new Date(f.until.value + "T00:00:00").getTime() + 86400000).toISOString());
      if (f.everything && f.everything.checked) params.set("everything", "true");
      try {
        entries = (await EP.api("GET", "/api/v1/audit?" + params)).entries;
        list.replaceChildren(entries.length ? EP.table([t("audit.at"), t("audit.actor"), t("audit.action"), t("audit.target"), t("audit.detail"), t("audit.client")],
          entries.map((e) => [EP.time(e.at, true), { text: e.actor, user: true }, el("span", { title: EP.userText(e.action), text: t("audit.do." + e.action, null) || EP.userText(e.action) }),
            { text: e.target, user: true }, { text: Object.keys(e.detail || {}).length ? JSON.stringify(e.detail) : "", user: true, cls: "wrap small" }, { text: e.client, user: true }]),
          "grid audit-table") : el("div.empty", { text: t("audit.none") }));
        list.dataset.count = String(entries.length);
        EP.showError($("error"), "");
      } catch (err) { fail(err); }
    }
    root().replaceChildren(filters, section(null, list));
    await load();
  };

  // account lifecycle ----------------------------------------------------------------------------
  const POLICY = ["disable_idle_days", "downgrade_idle_analyst_days", "downgrade_view_only_days"];
  function changesTable(changes) {
    if (!changes.length) return el("div.empty", { text: t("lifecycle.no_changes") });
    return EP.table([t("members.email"), t("lifecycle.change"), t("lifecycle.reason")], changes.map((c) =>
      [{ text: c.email, user: true }, t("lifecycle.action." + c.action), { text: c.reason, user: true, cls: "wrap" }]), "grid lifecycle-table");
  }
  P["admin-lifecycle"] = async function (data) {
    const policy = await EP.api("GET", "/api/v1/lifecycle/policy");
    const preview = el("div", { id: "lifecycle-preview" });
    const last = el("div", { id: "lifecycle-last" });
    const form = el("form.card", { id: "policy-form", onsubmit: async (e) => {
      e.preventDefault();
      const body = Object.fromEntries(POLICY.map((k) => [k, Number(e.target[k].value)]));
      body.exempt_admins = e.target.exempt_admins.checked;
      try { await EP.api("PUT", "/api/v1/lifecycle/policy", body); EP.toast(t("builder.saved")); } catch (err) { fail(err); }
    } },
    ...POLICY.map((k) => el("label.field", {}, el("span.field-label", { text: t("lifecycle." + k) }),
      el("input", { type: "number", name: k, min: 0, value: policy[k], style: "width:7em", disabled: !data.superuser }))),
    el("label.check", {}, el("input", { type: "checkbox", name: "exempt_admins", checked: policy.exempt_admins, disabled: !data.superuser }), t("lifecycle.exempt_admins")),
    el("p.muted.small", { text: t("lifecycle.zero_off") }),
    data.superuser ? el("button.primary", { type: "submit", text: t("common.save") }) : el("p.muted", { text: t("lifecycle.superusers_only") }));
    const previewButton = el("button", { type: "button", id: "lifecycle-dry-run", text: t("lifecycle.dry_run"), disabled: !data.superuser, onclick: async () => {
      try {
        const found = await EP.api("POST", "/api/v1/lifecycle/review?dry_run=true");
        preview.replaceChildren(el("p", { text: t("lifecycle.would_change").replace("{n}", EP.fmt(found.changes.length)) }), changesTable(found.changes));
        document.body.dataset.dryRun = String(found.changes.length);
      } catch (err) { fail(err); }
    } });
    const found = await EP.api("GET", "/api/v1/lifecycle/last-review");
    const review = found.last_review;
    last.replaceChildren(review ? el("div", {}, el("p", { text: t("lifecycle.last_at").replace("{at}", EP.time(review.at)).replace("{who}", EP.userText(review.actor)) }),
      changesTable((review.detail || {}).changes || [])) : el("div.empty", { text: t("lifecycle.never") }));
    root().replaceChildren(section(t("lifecycle.policy"), form), section(t("lifecycle.last_review"), last),
      section(t("lifecycle.preview"), el("p.muted", { text: t("lifecycle.preview_about") }), previewButton, preview));
  };

  // metric catalogue -----------------------------------------------------------------------------
  function filterWords(filters) {
    const words = (filters || []).map((f) => EP.propertyLabel(f.property) + " " + t("op." + (f.op || "eq")) + (f.value === undefined ? "" : " " + EP.userText(f.value))).join(", ");
    return words ? " (" + words + ")" : "";
  }
  function termWords(term) {
    if (!term) return "—";
    if (term.spend) return t("metrics.spend");
    const math = t("mathword." + (term.math || "total"), term.math).replace("{property}", EP.propertyLabel(term.property || ""));
    return EP.eventLabel(term.event) + " · " + math + filterWords(term.filters);
  }
  /* A metric over a cohort in words: what is counted, the outcome each one is checked for, the ratio. */
  const fill = (key, values) => Object.entries(values).reduce((text, [k, v]) => text.replace("{" + k + "}", v), t(key));
  function cohortWords(c) {
    const parts = [EP.eventLabel(c.event) + filterWords(c.filters)];
    if (c.per) parts.push(fill(c.last ? "metrics.cohort_last" : "metrics.cohort_per", { property: EP.propertyLabel(c.per) }));
    if (c.first) parts.push(t("metrics.cohort_first"));
    if (c.time) parts.push(fill("metrics.cohort_time", { property: EP.propertyLabel(c.time) }));
    if (c.settle_days !== undefined && c.settle_days !== null) parts.push(fill("metrics.cohort_settle", { n: EP.fmt(c.settle_days) }));
    if (c.unless) parts.push(fill("metrics.cohort_unless", { event: EP.eventLabel(c.unless.event) + filterWords(c.unless.filters) }));
    return parts.join(" · ");
  }
  const dayWords = (n) => fill(n < 0 ? "metrics.days_before" : "metrics.days_after", { n: EP.fmt(Math.abs(n)) });
  function outcomeWords(o, per) {
    if (!o) return "—";
    const from = o.from_days === undefined ? 0 : o.from_days;
    const to = o.to_days === undefined ? null : o.to_days;
    const parts = [EP.eventLabel(o.event) + filterWords(o.filters)];
    if (from === null && to === null) parts.push(t("metrics.window_any"));
    else if (to === null) parts.push(fill("metrics.window_from", { from: dayWords(from) }));
    else if (from === null) parts.push(fill("metrics.window_to", { to: dayWords(to) }));
    else if (from === 0) parts.push(fill("metrics.window_within", { to: dayWords(to) }));
    else parts.push(fill("metrics.window_between", { from: dayWords(from), to: dayWords(to) }));
    if (o.same && per) parts.push(fill("metrics.same", { property: EP.propertyLabel(per) }));
    if (o.value) parts.push(fill("metrics.value", { property: EP.propertyLabel(o.value) }));
    return parts.join(" · ");
  }
  function definitionWords(d) {
    if (d.cohort) return cohortWords(d.cohort) + " → " + outcomeWords(d.outcome, d.cohort.per) + " (" + t("metrics.ratio." + d.ratio) + ")";
    return termWords(d.numerator) + (d.denominator ? " ÷ " + termWords(d.denominator) : "");
  }
  function definitionRows(d) {
    const row = (label, text) => [el("dt", { text: t(label) }), el("dd", { text: text })];
    if (!d.cohort) return [...row("metrics.numerator", termWords(d.numerator)), ...row("metrics.denominator", termWords(d.denominator))];
    return [...row("metrics.cohort", cohortWords(d.cohort)), ...row("metrics.outcome", outcomeWords(d.outcome, d.cohort.per)),
      ...row("metrics.ratio", t("metrics.ratio." + d.ratio)),
      ...(d.channel ? row("metrics.channel", fill("metrics.channel_of", { property: EP.propertyLabel(d.channel.property || "channel"), event: EP.eventLabel(d.channel.event || "lead_created") })) : [])];
  }

  P["admin-metrics"] = async function () {
    await EP.catalogue();
    const [metrics, usage] = await Promise.all([EP.api("GET", "/api/v1/metrics"), EP.api("GET", "/api/v1/metrics-usage")]);
    let owners = {};
    if (can("members:manage")) try { owners = Object.fromEntries((await EP.api("GET", "/api/v1/users")).users.map((u) => [u.id, u.name || u.email])); } catch (_) { /* names only */ }
    const detail = el("div", { id: "metric-detail" });
    async function open(m) {
      const full = await EP.api("GET", "/api/v1/metrics/" + encodeURIComponent(m.name));
      const used = usage.usage[m.name] || [];
      detail.replaceChildren(section(EP.userText(m.title), el("dl.kv", {},
        el("dt", { text: t("metrics.name") }), el("dd", {}, el("code", { translate: "no", text: m.name })),
        el("dt", { text: t("metrics.description") }), el("dd", { translate: "no", text: m.description || "—" }),
        ...definitionRows(full.definition),
        el("dt", { text: t("metrics.scale") }), el("dd", { text: String(full.definition.scale || 1) })),
      el("h3", { text: t("metrics.versions") }), EP.table([t("metrics.version"), t("metrics.author"), t("metrics.changed"), t("metrics.definition")],
        (full.versions || []).slice().reverse().map((v) => [v.version, { text: v.author, user: true }, EP.time(v.created_at),
          { text: definitionWords(v.definition), cls: "wrap" }]), "grid versions-table"),
      el("h3", { text: t("metrics.used_in") }), used.length ? EP.table([t("metrics.report"), t("metrics.dashboards")], used.map((u) =>
        [el("a", { href: "/analysis/" + u.kind + "?report=" + u.report_id, translate: "no", text: EP.userText(u.report) }),
          { text: u.dashboards.map((d) => d.name).join(", "), user: true }]), "grid usage-table") : el("p.muted", { text: t("metrics.unused") })));
      document.body.dataset.metricOpen = m.name;
    }
    root().replaceChildren(section(null, el("div.table-wrap", {}, EP.table([t("metrics.title"), t("metrics.name"), t("metrics.unit"), t("metrics.owner"),
      t("metrics.version"), t("metrics.changed"), t("metrics.used_in")], metrics.metrics.map((m) => [
      el("button.link", { type: "button", "data-testid": "metric-" + m.name, translate: "no", text: EP.userText(m.title), onclick: () => open(m).catch(fail) }),
      el("code", { translate: "no", text: m.name }), { text: m.unit, user: true },
      m.owner_user_id ? { text: owners[m.owner_user_id] || "#" + m.owner_user_id, user: true } : t("metrics.no_owner"),
      m.version, EP.time(m.updated_at), { text: t("metrics.reports_n").replace("{n}", String((usage.usage[m.name] || []).length)), attrs: { "data-testid": "usage-" + m.name } }]),
    "grid metrics-table"))), detail);
  };

  // quarantine -----------------------------------------------------------------------------------
  P["admin-quarantine"] = async function () {
    const list = el("div.table-wrap"), warnings = el("div.table-wrap"), total = el("strong");
    let offset = 0;
    let source = new URLSearchParams(location.search).get("source") || "";  // the ingestion page links ?source=xapi
    const pages = el("span.inline");
    const sources = el("select", { "aria-label": t("ingestion.source"), "data-testid": "quarantine-source", onchange: () => {
      source = sources.value;
      offset = 0;
      history.replaceState(null, "", location.pathname + (source ? "?source=" + encodeURIComponent(source) : ""));
      load().catch((err) => EP.toast(err.message, true));
    } });
    async function load() {
      const found = await EP.api("GET", "/api/v1/quarantine?limit=50&offset=" + offset + (source ? "&source=" + encodeURIComponent(source) : ""));
      const counts = Object.assign({}, found.sources);
      if (source && !(source in counts)) counts[source] = 0;
      sources.replaceChildren(el("option", { value: "", text: t("quarantine.all_sources") }),
        ...Object.entries(counts).map(([name, n]) => el("option", { value: name, text: EP.userText(name) + " (" + EP.fmt(n) + ")" })));
      sources.value = source;
      total.textContent = t("quarantine.count").replace("{n}", EP.fmt(found.total));
      pages.replaceChildren(el("button", { type: "button", text: t("common.previous"), disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - 50); load(); } }),
        el("button", { type: "button", text: t("common.next"), disabled: offset + 50 >= found.total, onclick: () => { offset += 50; load(); } }));
      list.replaceChildren(found.records.length ? EP.table([t("ingestion.received"), t("ingestion.source"), t("ingestion.location"), t("ingestion.reason"), t("ingestion.record")],
        found.records.map((r) => [EP.time(r.received_at, true), { text: r.source, user: true }, { text: r.location, user: true },
          { text: r.reason, user: true, cls: "wrap" }, el("details", {}, el("summary", { text: t("quarantine.show") }), el("pre", { translate: "no", text: r.record }))]), "grid quarantine-table")
        : el("div.empty", { text: t("ingestion.quarantine_empty") }));
      const warned = await EP.api("GET", "/api/v1/identity/warnings?limit=100");
      warnings.replaceChildren(warned.warnings.length ? EP.table([t("quarantine.when"), t("ingestion.reason")], warned.warnings.map((w) =>
        [EP.time(w.created_at || w.at, true), { text: w.reason || w.message || JSON.stringify(w), user: true, cls: "wrap" }]), "grid") : el("div.empty", { text: t("quarantine.no_warnings") }));
    }
    root().replaceChildren(section(null, el("div.result-bar", {}, total, sources, el("span.spacer"), pages), list), section(t("quarantine.identity_warnings"), warnings));
    await load();
  };
})();
