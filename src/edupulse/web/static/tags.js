/* Tags pages: the list with a new-tag editor (preview before saving), one tag's page (distribution, history,
   values, versions, runs, a model's evaluation), and a person's tags on the person page. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, P = EP.pages;
  const $ = (id) => document.getElementById(id);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : values[k]));
  // words of a type, a status and a change (each key written out, so the catalogue test sees it)
  const TYPE = () => ({ custom_tiers: t("tags.type.custom_tiers"), metric_tiers: t("tags.type.metric_tiers"),
    first_event: t("tags.type.first_event"), last_event: t("tags.type.last_event"), preference: t("tags.type.preference"),
    rfm: t("tags.type.rfm"), sql: t("tags.type.sql"), uploaded: t("tags.type.uploaded"),
    missed_streak: t("tags.type.missed_streak"), referral_kol: t("tags.type.referral_kol"),
    institution_health: t("tags.type.institution_health"), model: t("tags.type.model") });
  const STATUS = () => ({ finished: t("tags.status.finished"), failed: t("tags.status.failed"), running: t("tags.status.running") });
  const CHANGE = () => ({ created: t("tags.change.created"), changed: t("tags.change.changed"), deleted: t("tags.change.deleted") });
  const unitWord = (unit) => (unit === "person" ? t("tags.unit.person") : EP.t("term.group." + unit, null) || EP.userText(unit));
  /* A tag's description: the built-in tags' in the page's language, a user's tag's as written. */
  const about = (tag) => (tag.built_in && EP.hasWord("tags.builtin." + tag.name) ? t("tags.builtin." + tag.name) : EP.u(tag.description || ""));
  const shown = (value) => (value === null || value === undefined ? "—" : typeof value === "number" ? EP.fmt(value) : EP.userText(String(value)));
  function distributionTable(rows) {
    return EP.table([t("tags.value"), t("tags.count"), t("tags.mean")],
      rows.map((r) => [{ text: r.value === null ? "—" : r.value, user: true }, r.units, r.mean_number === null ? "—" : EP.fmt(r.mean_number)]));
  }

  P.tags = async function (data) {
    try {
      const found = await EP.api("GET", "/api/v1/tags");
      $("tags-list").replaceChildren(found.tags.length ? EP.table(
        [t("tags.name"), t("tags.unit"), t("tags.type"), t("tags.units"), t("tags.last_run"), t("tags.description")],
        found.tags.map((tag) => [el("a", { href: "/tags/" + encodeURIComponent(tag.name), translate: "no", text: EP.userText(tag.name) }),
          unitWord(tag.unit), TYPE()[tag.definition.type], EP.fmt(tag.units) + (tag.coverage === null || tag.coverage === undefined ? "" : " (" + EP.pct(tag.coverage) + ")"),
          tag.last_run ? STATUS()[tag.last_run.status] + " · " + tag.last_run.day : t("tags.never"), about(tag)])) : el("div.empty", { text: t("tags.none") }));
    } catch (err) { EP.showError($("tags-error"), err.message); }
    if (!data.can_save) return;
    const editor = await EP.tagEditor($("tag-editor"), EP.tagExamples.custom_tiers, { errorBox: $("tag-create-error") });
    $("tag-create").addEventListener("click", async () => {
      try {
        const made = await EP.api("POST", "/api/v1/tags", editor.definition());
        EP.toast(t("tags.saved_ok"));
        location.href = "/tags/" + encodeURIComponent(made.name);
      } catch (err) { editor.problems(err.message); }
    });
  };

  function historyChart(days) {
    const values = [...new Set(days.flatMap((d) => d.distribution.map((r) => String(r.value))))].slice(0, 12);
    EP.chart($("tag-history-chart"), { legend: { type: "scroll" }, xAxis: { type: "category", data: days.map((d) => d.day) },
      yAxis: { type: "value" }, series: values.map((v) => ({ name: EP.userText(v), type: "line",
        data: days.map((d) => (d.distribution.find((r) => String(r.value) === v) || { units: 0 }).units) })) });
  }

  function evaluation(run) {
    const e = run && run.evaluation;
    if (!e || !e.gate) return;
    $("tag-model").hidden = false;
    if (e.outcome) $("tag-outcome").textContent = fill(t("tags.outcome"), { outcome: EP.boot.lang === "zh" ? e.outcome.zh : e.outcome.en });
    const g = e.gate;
    $("tag-gate").textContent = fill(t("tags.gate"), { mean: g.mean.toFixed(3), min: g.min_mean, std: g.std.toFixed(3), max: g.max_std, splits: g.splits })
      + " · " + (g.passed ? t("tags.gate_passed") : t("tags.gate_failed"));
    const held = e.held_out;
    if (!held) return;
    $("tag-auc").textContent = fill(t("tags.held_out_auc"), { auc: held.auc.toFixed(3), units: EP.fmt(held.units), positives: EP.fmt(held.positives) });
    EP.chart($("tag-roc"), { tooltip: { trigger: "item" }, xAxis: { type: "value", min: 0, max: 1, name: t("tags.fpr") },
      yAxis: { type: "value", min: 0, max: 1, name: t("tags.tpr") },
      series: [{ type: "line", showSymbol: false, data: held.roc }, { type: "line", showSymbol: false, lineStyle: { type: "dashed" }, data: [[0, 0], [1, 1]] }] });
    EP.chart($("tag-calibration"), { tooltip: { trigger: "item" }, xAxis: { type: "value", min: 0, max: 1, name: t("tags.calibration_axis") },
      yAxis: { type: "value", min: 0, max: 1, name: t("tags.rate_axis") },
      series: [{ type: "line", data: held.calibration.map((c) => [c.mean_score, c.rate]) }, { type: "line", showSymbol: false, lineStyle: { type: "dashed" }, data: [[0, 0], [1, 1]] }] });
    $("tag-cutoffs").replaceChildren(EP.table([t("tags.tier"), t("tags.min_score"), t("tags.count"), t("tags.precision"), t("tags.recall")],
      held.at_cutoffs.map((c) => [{ text: c.tier, user: true }, c.min_score, c.units, EP.pct(c.precision), EP.pct(c.recall)])));
    $("tag-importances").replaceChildren(EP.table([t("tags.feature"), t("tags.weight")],
      (e.importances || []).map((f) => [EP.boot.lang === "zh" ? f.zh : f.en, f.weight.toFixed(3)])));
  }

  // a run's stages (see tags/run.py), each key written out for the catalogue test
  const STAGE = () => ({ queued: t("tags.stage.queued"), computing: t("tags.stage.computing"), counting: t("tags.stage.counting"),
    reading: t("tags.stage.reading"), loading: t("tags.stage.loading"), gate: t("tags.stage.gate"),
    evaluating: t("tags.stage.evaluating"), fitting: t("tags.stage.fitting"), scoring: t("tags.stage.scoring"),
    storing: t("tags.stage.storing"), done: t("tags.stage.done"), failed: t("tags.stage.failed") });

  /* Start a run and follow it: the server answers the finished run, or 202 with the run to poll; its stage and
     steps done of its total show under the button until it is over. */
  async function runToTheEnd(base) {
    let current = await EP.api("POST", base + "/run?wait=2");
    const bar = $("tag-run-bar");
    while (current.status === "running") {
      const p = current.progress || {};
      const stage = STAGE()[p.stage] || p.stage || "";
      const counted = p.total && p.done !== null && p.done !== undefined;
      $("tag-run-status").textContent = counted ? fill(t("tags.run_progress"), { stage: stage, done: p.done, total: p.total }) : stage;
      bar.hidden = !counted;
      if (counted) { bar.max = p.total; bar.value = p.done; }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      current = await EP.api("GET", base + "/runs/" + current.id);
    }
    return current;
  }

  P.tag = async function (data) {
    const base = "/api/v1/tags/" + encodeURIComponent(data.name);
    async function load() {
      const tag = await EP.api("GET", base);
      $("tag-type-word").textContent = TYPE()[tag.definition.type] + " · " + unitWord(tag.unit);
      $("tag-about").replaceChildren(about(tag));
      $("tag-definition").textContent = JSON.stringify(tag.definition, null, 2);
      $("tag-units").textContent = "(" + EP.fmt(tag.units) + ")";
      const dist = tag.distribution || [];
      $("tag-distribution").replaceChildren(distributionTable(dist));
      if (dist.length) EP.chart($("tag-chart"), { xAxis: { type: "category", data: dist.map((r) => EP.userText(String(r.value))) },
        yAxis: { type: "value" }, series: [{ type: "bar", data: dist.map((r) => r.units) }] });
      $("tag-versions").replaceChildren(EP.table([t("tags.version"), t("tags.change"), t("tags.author"), t("tags.at")],
        tag.versions.map((v) => [v.version, CHANGE()[v.change], { text: v.author, user: true }, EP.time(v.at)])));
      $("tag-runs").replaceChildren(EP.table([t("tags.day"), t("tags.status"), t("tags.changed"), t("tags.units"), t("tags.error")],
        tag.runs.map((r) => [r.day, STATUS()[r.status], r.changed, r.units, { text: r.error || "", user: true }])));
      evaluation(tag.runs.find((r) => r.evaluation));
      await editing(tag);
      const values = await EP.api("GET", base + "/values?limit=50");
      const model = tag.definition.type === "model";
      const columns = [t("tags.who"), t("tags.value")].concat(model ? [t("tags.score"), t("tags.reasons")] : []).concat([t("tags.since")]);
      $("tag-values").replaceChildren(EP.table(columns, values.values.map((v) => {
        const who = v.identities ? Object.values(v.identities).flat()[0] || "" : v.group_key;
        const row = [{ text: who, user: true }, { text: shown(v.value), user: true }];
        if (model) row.push(v.score === null ? "—" : v.score.toFixed(3), { node: document.createTextNode(EP.reasons(v).join("; ")), cls: "wrap" });
        row.push(v.since);
        return row;
      })));
      try {
        const history = await EP.api("GET", base + "/history");
        if (history.days.length) historyChart(history.days);
      } catch (err) { /* advisors see no distribution history */ }
    }
    /* The definition's editor (a new version on save) and, for an uploaded tag, the CSV upload. */
    async function editing(tag) {
      if (!data.can_run || tag.built_in) return;
      $("tag-edit").hidden = false;
      if (!data.editor) {
        data.editor = await EP.tagEditor($("tag-editor"), tag, { errorBox: $("tag-save-error"), fixedName: true });
        $("tag-save").onclick = async () => {
          try {
            const body = data.editor.definition();
            delete body.name;
            await EP.api("PUT", base, body);
            EP.toast(t("tags.saved_ok"));
            data.editor = null;
            await load();
          } catch (err) { data.editor.problems(err.message); }
        };
      }
      $("tag-upload").hidden = tag.definition.type !== "uploaded";
      $("tag-upload-send").onclick = async () => {
        const file = $("tag-upload-file").files[0];
        if (!file) return;
        try {
          const done = await EP.uploadTagCsv(data.name, await file.text());
          $("tag-upload-result").replaceChildren(el("p", { text: fill(t("tagedit.uploaded_ok"), { bad: EP.fmt(done.problems.length) }) }),
            ...done.problems.slice(0, 20).map((p) => el("div.muted.small", { translate: "no", text: EP.userText(typeof p === "string" ? p : JSON.stringify(p)) })));
          await load();
        } catch (err) { EP.showError($("tag-error"), err.message); }
      };
    }
    const run = $("tag-run");
    if (run) run.addEventListener("click", async () => {
      run.disabled = true;
      $("tag-run-status").textContent = t("tags.running");
      try {
        const done = await runToTheEnd(base);
        $("tag-run-bar").hidden = true;
        $("tag-run-status").textContent = done.status === "finished" ? t("tags.ran_ok") : fill(t("tags.run_failed"), { error: done.error });
        await load();
      } catch (err) { $("tag-run-bar").hidden = true; EP.showError($("tag-error"), err.message); }
      run.disabled = false;
    });
    try { await load(); } catch (err) { EP.showError($("tag-error"), err.message); }
  };

  /* The person page: the person's tags in force and their history. */
  const personPage = P.person;
  P.person = async function (data) {
    const tags = $("person-tags");
    const own = async () => {
      if (!tags) return;
      try {
        const found = await EP.api("GET", "/api/v1/persons/" + data.person_id + "/tags");
        const entries = Object.entries(found.tags);
        // the reasons of a score go under its value: the side panel has no room for a column of them
        tags.replaceChildren(entries.length ? EP.table([t("tags.name"), t("tags.value"), t("tags.since")],
          entries.map(([name, v]) => [el("a", { href: "/tags/" + encodeURIComponent(name), translate: "no", text: EP.userText(name) }),
            { node: el("span", { translate: "no" }, EP.userText(shown(v.value) + (v.score !== undefined && v.score !== null ? " (" + v.score.toFixed(2) + ")" : "")),
              EP.reasons(v).length ? el("div.muted.reasons", { title: t("tags.reasons"), text: EP.reasons(v).join("; ") }) : ""), cls: "wrap" },
            v.since])) : el("div.empty", { text: t("tags.person_none") }));
        $("person-tag-history").replaceChildren(EP.table([t("tags.day"), t("tags.name"), t("tags.value")],
          found.history.map((h) => [h.day, { text: h.tag, user: true }, h.value === null ? t("tags.lost") : { text: shown(h.value), user: true }])));
      } catch (err) { tags.replaceChildren(el("div.empty", { text: err.message })); }
    };
    await Promise.all([personPage ? personPage(data) : null, own()]);
  };
})();
