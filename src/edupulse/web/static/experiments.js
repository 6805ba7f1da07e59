/* Experiments pages: the list, the sample-size calculator, a new experiment, and one experiment's results. */
"use strict";
(function () {
  const P = EP.pages, el = EP.el, t = EP.t;
  const $ = (id) => document.getElementById(id);
  // words by status and verdict (each key written out, so the catalogue test sees it)
  const STATUS = () => ({ draft: t("experiments.status.draft"), running: t("experiments.status.running"),
    stopped: t("experiments.status.stopped") });
  const VERDICT = () => ({ better: t("experiments.verdict.better"), worse: t("experiments.verdict.worse"),
    inconclusive: t("experiments.verdict.inconclusive"), no_data: t("experiments.verdict.no_data") });
  const SENTENCE = () => ({ better: t("experiments.sentence.better"), worse: t("experiments.sentence.worse"),
    inconclusive: t("experiments.sentence.inconclusive"), no_data: t("experiments.sentence.no_data") });
  const OVERALL = () => ({ better: t("experiments.overall.better"), worse: t("experiments.overall.worse"),
    inconclusive: t("experiments.overall.inconclusive"), no_data: t("experiments.overall.no_data") });
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : values[k]));
  const EXAMPLE = {
    key: "course-page-2026", name: "New course page", hypothesis: "A shorter course page gets more trial bookings",
    variants: [{ key: "control", weight: 0.5 }, { key: "short_page", weight: 0.5 }],
    metrics: [{ event: "trial_booked", math: "unique", window_hours: 168 },
      { event: "order_paid", math: "sum", property: "amount" }],
    guardrails: [{ event: "order_refunded", math: "unique", lower_is_better: true }],
  };

  P.experiments = async function () {
    $("experiment-json").value = JSON.stringify(EXAMPLE, null, 2);
    $("experiment-create").addEventListener("click", async () => {
      try {
        const made = await EP.api("POST", "/api/v1/experiments", JSON.parse($("experiment-json").value));
        EP.toast(t("experiments.created"));
        location.href = "/experiments/" + encodeURIComponent(made.key);
      } catch (err) { EP.showError($("experiment-create-error"), err.message); }
    });
    $("sample-size").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(event.target);
      const query = new URLSearchParams({ baseline: form.get("baseline"), mde: Number(form.get("mde")) / 100,
        arms: form.get("arms") || 2 });
      if (form.get("sd")) query.set("sd", form.get("sd"));
      if (form.get("units_per_day")) query.set("units_per_day", form.get("units_per_day"));
      try {
        const size = await EP.api("GET", "/api/v1/experiment-sample-size?" + query);
        $("sample-size-result").textContent = fill(t("experiments.sample_result"), { per_arm: EP.fmt(size.per_arm),
          total: EP.fmt(size.total) }) + (size.days ? " · " + fill(t("experiments.sample_days"), { days: size.days }) : "");
      } catch (err) { $("sample-size-result").textContent = err.message; }
    });
    try {
      const data = await EP.api("GET", "/api/v1/experiments");
      $("experiments-list").replaceChildren(data.experiments.length ? EP.table(
        [t("experiments.key"), t("experiments.name"), t("experiments.status"), t("experiments.version"),
          t("experiments.started"), t("experiments.owner")],
        data.experiments.map((e) => [el("a", { href: "/experiments/" + encodeURIComponent(e.key), translate: "no", text: EP.userText(e.key) }),
          EP.u(e.name || ""), STATUS()[e.status], e.version, (e.started_at || "").replace("T", " ").slice(0, 16),
          e.owner || e.created_by])) : el("div.empty", { text: t("experiments.none") }));
    } catch (err) { EP.showError($("experiments-error"), err.message); }
  };

  const number = (v, percent) => (v === null || v === undefined ? "—" : percent ? EP.pct(v) : EP.fmt(v));
  const pValue = (p) => (p === null || p === undefined ? "—" : p < 0.001 ? "<0.001" : p.toFixed(3));
  // the words of a unit (person, or a group type such as class or school) and of a correction method
  const unitWord = (unit) => (unit === "person" ? t("experiments.unit.person") : EP.t("term.group." + unit, null) || EP.userText(unit));
  const CORRECTION = () => ({ holm: t("experiments.correction.holm"), benjamini_hochberg: t("experiments.correction.benjamini_hochberg") });
  /* A metric in words: its given name, a catalogue metric's name, or "Trial booked · unique" from its event. */
  function metricWords(spec, label) {
    if (!spec || spec.name || spec.metric || !spec.event) return EP.userText(label);
    const math = spec.math || "unique";
    const what = t("mathword." + math, math).replace("{property}", EP.propertyLabel(spec.property || ""));
    return EP.eventLabel(spec.event) + " · " + what + (spec.denominator ? " / " + EP.eventLabel(spec.denominator.event) : "");
  }
  const interval = (ci, relative) => (ci ? "[" + number(ci[0], relative) + ", " + number(ci[1], relative) + "]" : "—");

  function summary(exp, reload) {
    const buttons = [];
    if (exp.status !== "running") buttons.push(el("button.primary", { type: "button", text: t("experiments.start"),
      onclick: async () => { try { await EP.api("POST", "/api/v1/experiments/" + encodeURIComponent(exp.key) + "/start");
        EP.toast(t("experiments.started_ok")); reload(); } catch (err) { EP.toast(err.message, true); } } }));
    else buttons.push(el("button", { type: "button", text: t("experiments.stop"),
      onclick: async () => { if (!confirm(t("experiments.confirm_stop"))) return;
        try { await EP.api("POST", "/api/v1/experiments/" + encodeURIComponent(exp.key) + "/stop");
          EP.toast(t("experiments.stopped_ok")); reload(); } catch (err) { EP.toast(err.message, true); } } }));
    return [el("p", {}, el("strong", { text: t("experiments.status") + ": " }), STATUS()[exp.status],
      " · " + t("experiments.version") + " " + exp.version + " · " + t("experiments.unit") + ": " + unitWord(exp.unit) +
      " · " + t("experiments.coverage") + ": " + EP.pct(exp.coverage)),
    exp.hypothesis ? el("p", {}, el("strong", { text: t("experiments.hypothesis") + ": " }), EP.u(exp.hypothesis)) : null,
    el("p", {}, el("strong", { text: t("experiments.variants") + ": " }),
      exp.variants.map((v) => EP.userText(v.key) + " (" + EP.pct(v.weight) + ")").join(", ")), el("div", {}, buttons)];
  }

  function sentence(metric, arm, relativeEffect, percent) {
    const verdict = arm.verdict || "no_data";
    const effect = relativeEffect ? arm.effect_relative : arm.effect_absolute;
    return fill(SENTENCE()[verdict], { variant: EP.userText(arm.variant), metric: metric.words,
      effect: (effect > 0 ? "+" : "") + number(effect, percent), interval: interval(arm.ci, percent) });
  }

  function metricCard(metric, result) {
    const bayes = result.engine === "bayesian";
    // relative effects, and conversions (rates and their differences), read as percentages
    const relative = result.relative || metric.kind === "conversion", rate = metric.kind === "conversion";
    const columns = [t("experiments.variant"), t("experiments.units"), t("experiments.mean"), t("experiments.effect"),
      t("experiments.interval"), ...(bayes ? [t("experiments.chance"), t("experiments.risk")]
        : [t("experiments.p_value"), t("experiments.p_adjusted")]), t("experiments.verdict")];
    const rows = metric.variants.map((a, i) => [EP.u(a.variant), a.units + (a.clusters ? " / " + a.clusters : ""),
      number(a.mean, rate), i ? number(result.relative ? a.effect_relative : a.effect_absolute, relative) : "—",
      i ? interval(a.ci, relative) : "—",
      ...(bayes ? [i ? EP.pct(a.chance_to_win) : "—", i && a.risk ? number(a.risk[1], relative) : "—"]
        : [i ? pValue(a.p_value) : "—", i ? pValue(a.p_value_adjusted) : "—"]),
      i ? { text: VERDICT()[a.verdict || "no_data"], attrs: { class: "verdict-" + (a.verdict || "no_data"), title: a.message || "" } } : "—"]);
    const chart = el("div.chart.small"), daily = el("div.chart.small");
    const card = el("section.card.metric", {}, el("h2", {}, metric.words, metric.guardrail ? el("span.badge", { text: t("experiments.guardrail") }) : null),
      EP.table(columns, rows), el("ul.sentences", {}, metric.variants.slice(1).map((a) => el("li", { text: sentence(metric, a, result.relative, relative) }))),
      el("h3", { text: t("experiments.interval_chart") }), chart, el("h3", { text: t("experiments.daily") }),
      metric.daily.length ? daily : el("div.muted", { text: t("experiments.no_daily") }));
    setTimeout(() => {
      const arms = metric.variants.slice(1).filter((a) => a.ci);
      const estimate = (a) => (result.relative ? a.effect_relative : a.effect_absolute);
      // the axis holds 0 and every interval (ECharts drops a mark line that leaves the axis)
      const ends = arms.flatMap((a) => a.ci).concat([0]);
      const pad = (Math.max(...ends) - Math.min(...ends)) * 0.05 || 1;
      EP.chart(chart, { grid: { left: 110, right: 30, top: 20, bottom: 30 }, tooltip: { trigger: "item" },
        xAxis: { type: "value", min: Math.min(...ends) - pad, max: Math.max(...ends) + pad,
          axisLabel: { formatter: (v) => number(v, relative) } }, yAxis: { type: "category", data: arms.map((a) => EP.userText(a.variant)) },
        series: [{ type: "scatter", name: t("experiments.effect"), symbolSize: 12,
          data: arms.map((a) => [estimate(a), a.variant]),
          markLine: { symbol: "none", silent: true, lineStyle: { width: 3, type: "solid" },
            data: [...arms.map((a) => [{ coord: [a.ci[0], a.variant] }, { coord: [a.ci[1], a.variant] }]),
              { xAxis: 0, lineStyle: { type: "dashed", width: 1, color: "#999" } }] } }] });
      if (metric.daily.length) {
        const days = [...new Set(metric.daily.map((p) => p.day))];
        const series = [];
        for (const v of [...new Set(metric.daily.map((p) => p.variant))]) {
          const points = days.map((d) => metric.daily.find((p) => p.day === d && p.variant === v));
          EP.userText(v);
          series.push({ type: "line", name: v, data: points.map((p) => (p ? p.effect : null)) });
          series.push({ type: "line", name: v + " · " + t("experiments.lower"), lineStyle: { type: "dotted" }, symbol: "none", data: points.map((p) => (p && p.ci ? p.ci[0] : null)) });
          series.push({ type: "line", name: v + " · " + t("experiments.upper"), lineStyle: { type: "dotted" }, symbol: "none", data: points.map((p) => (p && p.ci ? p.ci[1] : null)) });
        }
        EP.chart(daily, { legend: { data: [...new Set(metric.daily.map((p) => p.variant))], bottom: 0 }, grid: { left: 60, right: 20, top: 20, bottom: 60 }, xAxis: { type: "category", data: days }, yAxis: { type: "value", scale: true }, series: series });
      }
    }, 0);
    return card;
  }

  P.experiment = async function (data) {
    const key = encodeURIComponent(data.key);
    let specs = [];
    async function load() {
      try {
        const exp = await EP.api("GET", "/api/v1/experiments/" + key);
        $("experiment-title").textContent = EP.userText(exp.name ? exp.name + " (" + exp.key + ")" : exp.key);
        $("experiment-title").setAttribute("translate", "no");
        specs = [...(exp.metrics || []), ...(exp.guardrails || [])];
        $("experiment-summary").replaceChildren(...summary(exp, load).filter(Boolean));
        await results();
        EP.showError($("experiment-error"), "");
      } catch (err) { EP.showError($("experiment-error"), err.message); }
    }
    async function results() {
      const form = new FormData($("results-options"));
      const query = new URLSearchParams({ engine: form.get("engine"), cuped: form.get("cuped") ? "true" : "false",
        relative: form.get("relative") ? "true" : "false" });
      const result = await EP.api("GET", "/api/v1/experiments/" + key + "/results?" + query);
      const warn = $("srm-warning");
      warn.hidden = !result.srm_warning;
      warn.textContent = result.srm_warning ? fill(t("experiments.srm"), { counts: Object.entries(result.units).map(([k, n]) => k + " " + n).join(", "),
        p: result.srm_p_value.toExponential(2) }) : "";
      const notes = [el("strong", { text: OVERALL()[result.verdict] })];
      if (result.guardrail_hurt.length) notes.push(el("div.error", { text: fill(t("experiments.guardrail_hurt"), { list: result.guardrail_hurt.join(", ") }) }));
      if (result.mixed_units) notes.push(el("div.muted", { text: fill(t("experiments.mixed"), { n: result.mixed_units }) }));
      if (result.correction !== "none") notes.push(el("div.muted", { text: fill(t("experiments.correction"), { method: CORRECTION()[result.correction] || EP.userText(result.correction) }) }));
      $("verdict").replaceChildren(...notes);
      $("results").replaceChildren(...result.metrics.map((m, i) => metricCard({ ...m, words: metricWords(specs[i], m.label) }, result)));
    }
    $("results-options").addEventListener("submit", (event) => { event.preventDefault(); results().catch((err) => EP.showError($("experiment-error"), err.message)); });
    await load();
  };
})();
