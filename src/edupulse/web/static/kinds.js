/* The analysis builder's models: each kind is one form definition (defaults + form) and one renderer.
   Adding a kind = adding one entry here (and its messages). Kinds without a renderer show a table of the
   result's rows (the generic renderer). Renderers get the result, the chart and table nodes, and
   opts.query (the query that gave the result) for display names, and may return a promise. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields;
  const K = EP.kinds;
  const MATHS = ["total", "unique_persons", "avg_per_person", "sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99"];
  const PROPERTY_MATHS = MATHS.slice(3);
  const firstEvent = (cat, wanted) => (cat.events.find((e) => e.name === wanted) || cat.events[0] || {}).name || null;
  const K2 = (EP.kindHelpers = {});

  function eventList(cat, q, key, changed, opts) {
    const box = el("div.event-list");
    const list = q[key];
    const redraw = () => {
      box.replaceChildren(...list.map((item, i) => {
        const parts = [el("span.step-index", { text: String(i + 1) }),
          F.eventSelect(cat, item.event, (v) => { item.event = v; changed(); }, opts.allowAny, key + "-event-" + i)];
        if (opts.math) {
          const propBox = el("span");
          const drawProp = () => propBox.replaceChildren(PROPERTY_MATHS.includes(item.math) ?
            F.propertySelect(cat, item.property, (v) => { item.property = v; changed(); }, key + "-property-" + i) : "");
          parts.push(F.select(MATHS.map((m) => [m, t("math." + m)]), item.math || "total", (v) => {
            item.math = v;
            if (!PROPERTY_MATHS.includes(v)) delete item.property;
            drawProp();
            changed();
          }, key + "-math-" + i), propBox);
          drawProp();
        }
        if (list.length > (opts.min || 1))
          parts.push(el("button.link.danger", { type: "button", text: "×", title: t("common.remove"), "data-testid": key + "-remove-" + i,
            onclick: () => { list.splice(i, 1); redraw(); changed(); } }));
        item.filters = item.filters || [];
        return el("div.event-item", {}, el("div.inline", {}, parts),
          el("details.sub", { open: item.filters.length > 0 }, el("summary", { text: t("builder.filters") }),
            F.filters(cat, item.filters, changed, key + "-" + i)));
      }), el("button.link", { type: "button", text: opts.addLabel, "data-testid": "add-" + key,
        onclick: () => { list.push({ event: firstEvent(cat), filters: [] }); redraw(); changed(); } }));
    };
    redraw();
    return box;
  }
  K2.eventList = eventList;

  function common(cat, q, changed, withGranularity) {
    q.filters = q.filters || [];
    return [
      F.dateRange(q, changed),
      withGranularity ? F.granularity(q, changed) : null,
      el("div.field", {}, el("span.field-label", { text: t("builder.filters") }), F.filters(cat, q.filters, changed, "global")),
      F.breakdown(cat, q, changed),
    ];
  }

  // words of results ------------------------------------------------------------------------------

  /* Names of the groups a breakdown by group.TYPE shows, fetched before drawing. */
  K2.loadGroupNames = async function (query, values) {
    const props = (query && query.breakdown && query.breakdown.properties) || [];
    const names = {};
    await Promise.all(props.map(async (p, i) => {
      const m = /^group\.([^.]+)$/.exec(p);
      if (m) names[i] = await EP.groupNames(m[1], values.map((v) => (v ? v[i] : null)));
    }));
    return names;
  };
  /* A breakdown value list in words ("Beijing / live"), group keys by their stored names. */
  K2.breakdownWords = function (values, names) {
    if (!values) return "";
    return [].concat(values).map((v, i) => (names && names[i] && names[i][v] ? EP.userText(names[i][v]) : EP.valueLabel(v))).join(" / ");
  };
  /* A trends series in words: "Lessons attended · persons", "Order paid · sum of Amount". */
  K2.seriesWords = function (s, query) {
    const spec = (query && query.series && query.series[s.index]) || {};
    if (spec.name) return EP.userText(spec.name);
    if (s.metric || spec.metric) return EP.userText(s.label || spec.metric);
    if (s.index === undefined && s.label) return EP.userText(s.label);  // a formula
    const math = s.math || spec.math || "total";
    const what = t("mathword." + math, math).replace("{property}", EP.propertyLabel(spec.property || ""));
    return EP.eventLabel(s.event !== undefined ? s.event : spec.event) + " · " + what;
  };
  const COUNTS = new Set(["total", "unique_persons", "avg_per_person", "dau", "wau", "mau", "unique"]);
  /* Which axis a series belongs on: counts on the left, amounts (sums, averages of a property) and metric
     units on the right, so that revenue and counts each get a readable scale. */
  K2.axisKey = function (s, query) {
    const spec = (query && query.series && query.series[s.index]) || {};
    if (s.unit || spec.metric) return "unit:" + (s.unit || spec.metric);
    const math = s.math || spec.math || "total";
    return COUNTS.has(math) ? "count" : "prop:" + (spec.property || "");
  };
  K2.view = (query) => (query && query.$view) || {};
  /* Breakdown lines in the order the viewer chose, "other values" hidden if asked. */
  K2.arrange = function (items, query, total, words) {
    const view = K2.view(query);
    let out = items.slice();
    if (view.hideOther) out = out.filter((s) => !(s.breakdown || []).includes("$other"));
    if (view.sort === "value_asc") out.sort((a, b) => total(a) - total(b));
    else if (view.sort === "name") out.sort((a, b) => words(a).localeCompare(words(b), EP.boot.lang));
    return out;
  };

  // trends ------------------------------------------------------------------------------------
  K.trends = {
    chartTypes: true,
    defaults(cat, preset) {
      const event = preset === "attendance" ? firstEvent(cat, "lesson_attended") : firstEvent(cat);
      return { kind: "trends", series: [{ event: event, math: preset === "attendance" ? "unique_persons" : "total" }],
        date_range: { date_from: "-29d", date_to: "today" }, granularity: "day" };
    },
    form(cat, q, changed) {
      return [
        el("div.field", {}, el("span.field-label", { text: t("builder.series") }),
          eventList(cat, q, "series", changed, { allowAny: true, math: true, addLabel: t("builder.add_series") })),
        ...common(cat, q, changed, true),
        el("label.check", {}, el("input", { type: "checkbox", checked: !!q.compare_previous, "data-testid": "compare-previous",
          onchange: (e) => { q.compare_previous = e.target.checked; changed(); } }), t("builder.compare_previous")),
      ];
    },
    async render(result, out, opts) {
      const query = (opts && opts.query) || {};
      const all = (result.series || []).map((s, i) => Object.assign({ $i: i }, s));
      if (!all.length) return false;
      const names = await K2.loadGroupNames(query, all.map((s) => s.breakdown));
      const words = (s) => K2.seriesWords(s, query) + (s.breakdown ? " · " + K2.breakdownWords(s.breakdown, names) : "");
      const series = K2.arrange(all, query, (s) => s.aggregated_value || 0, words);
      const kind = (opts && opts.chartType) || "line";
      const states = EP.bucketState(result.buckets, result.granularity || query.granularity || "day", result.date_from, result.date_to);
      const axes = [...new Set(series.map((s) => K2.axisKey(s, query)))];
      const axisName = (key) => (key === "count" ? t("axis.count") : key.startsWith("prop:") ? EP.propertyLabel(key.slice(5)) : EP.userText(key.slice(5)));
      const yAxis = axes.slice(0, 2).map((key, i) => ({ type: "value", name: axes.length > 1 ? axisName(key) : null, position: i ? "right" : "left",
        splitLine: { show: i === 0 }, axisLabel: { formatter: (v) => EP.fmtShort(v) } }));
      const chartSeries = series.flatMap((s) => EP.periodSeries({ name: words(s), type: kind, showSymbol: result.buckets.length < 60,
        yAxisIndex: Math.min(1, axes.indexOf(K2.axisKey(s, query))) }, s.data, states))
        .concat(((result.previous || {}).series || []).map((s) => ({ name: words(s) + " · " + t("builder.previous"),
          type: "line", data: s.data, lineStyle: { type: "dotted", opacity: 0.6 }, showSymbol: false })));
      EP.chart(out.chart, {
        legend: { type: "scroll", top: 0 },
        grid: { left: 50, right: axes.length > 1 ? 60 : 20, top: 50, bottom: 30, containLabel: true },
        xAxis: { type: "category", data: result.buckets.map((b) => b.replace("T", " ")) },
        yAxis: yAxis,
        series: chartSeries,
      });
      const rows = series.map((s) => [{ text: words(s), user: false },
        { text: s.aggregated_value, attrs: { "data-testid": "agg-" + s.$i, "data-value": s.aggregated_value } },
        ...s.data.map((v, j) => EP.periodCell({ text: v, attrs: { "data-testid": "cell-" + s.$i + "-" + j, "data-value": v } }, states[j]))]);
      out.table.replaceChildren(EP.table([t("builder.series"), t("result.total"), ...result.buckets.map((b) => b.replace("T", " "))], rows, "grid trends-table"),
        EP.periodNote(states) || "");
      return all.some((s) => s.aggregated_value || s.data.some((v) => v));
    },
  };

  // funnel ------------------------------------------------------------------------------------
  const stepCount = (s) => (s.count !== undefined ? s.count : s.persons !== undefined ? s.persons : s.value);
  K.funnel = {
    defaults(cat, preset) {
      const names = preset === "trial" || !preset ? ["lead_created", "trial_booked", "trial_attended", "order_paid"] : [];
      const steps = names.filter((n) => cat.events.some((e) => e.name === n)).map((n) => ({ event: n }));
      while (steps.length < 2) steps.push({ event: firstEvent(cat) });
      return { kind: "funnel", steps: steps, window: { value: 14, unit: "day" }, order: "ordered",
        date_range: { date_from: "-29d", date_to: "today" } };
    },
    form(cat, q, changed) {
      q.window = q.window || { value: 14, unit: "day" };
      return [
        el("div.field", {}, el("span.field-label", { text: t("builder.steps") }),
          eventList(cat, q, "steps", changed, { allowAny: false, min: 2, addLabel: t("builder.add_step") })),
        el("div.inline", {},
          F.row(t("builder.window"), F.number(q.window.value, (v) => { q.window.value = v; changed(); }, { min: 1, style: "width:6em", "data-testid": "window-value" })),
          F.row(t("builder.window_unit"), F.select(F.choices("unit", ["minute", "hour", "day", "week"]), q.window.unit,
            (v) => { q.window.unit = v; changed(); }, "window-unit")),
          F.row(t("builder.order"), F.select(F.choices("funnel.order", ["ordered", "strict", "any"]), q.order || "ordered",
            (v) => { q.order = v; changed(); }, "funnel-order")),
          F.row(t("builder.conversion_trend"), F.select([["", t("builder.none")], ...F.choices("unit", ["day", "week", "month"])],
            q.trend || "", (v) => { if (v) q.trend = v; else delete q.trend; changed(); }, "funnel-trend"))),
        ...common(cat, q, changed, false),
      ];
    },
    async render(result, out, opts) {
      const query = (opts && opts.query) || {};
      const all = result.results || (result.steps ? [{ breakdown: null, steps: result.steps }] : []);
      if (!all.length || !all[0].steps.length) return false;
      all.forEach((g, i) => (g.$i = i));
      const names = await K2.loadGroupNames(query, all.map((g) => g.breakdown));
      const words = (g) => (g.breakdown ? K2.breakdownWords(g.breakdown, names) : t("result.count"));
      const groups = K2.arrange(all, query, (g) => stepCount(g.steps[0]) || 0, words);
      const main = all[0].steps;
      const first = stepCount(main[0]) || 0;
      const stepName = (s, i) => i + 1 + ". " + EP.eventLabel(s.event || s.name);
      if (result.trend) {
        const states = EP.bucketState(result.trend.buckets, result.trend.granularity || query.trend || "day", result.date_from, result.date_to);
        EP.chart(out.chart, {
          legend: { top: 0 }, xAxis: { type: "category", data: result.trend.buckets },
          yAxis: [{ type: "value", name: t("axis.persons") }, { type: "value", name: t("result.conversion"), axisLabel: { formatter: (v) => Math.round(v * 100) + "%" }, max: 1 }],
          series: [...EP.periodSeries({ type: "bar", name: t("result.entered") }, result.trend.entered, states),
            ...EP.periodSeries({ type: "bar", name: t("result.converted") }, result.trend.converted, states),
            ...EP.periodSeries({ type: "line", name: t("result.conversion"), yAxisIndex: 1 }, result.trend.conversion_rate, states)],
        });
      } else EP.chart(out.chart, {
        tooltip: { trigger: "axis", confine: true },
        legend: groups.length > 1 ? { type: "scroll", top: 0 } : { show: false },
        grid: { left: 50, right: 20, top: groups.length > 1 ? 50 : 30, bottom: 30, containLabel: true },
        xAxis: { type: "category", data: main.map(stepName), axisLabel: { interval: 0, overflow: "truncate", width: 140 } },
        yAxis: { type: "value", name: t("axis.persons") },
        series: groups.slice(0, 10).map((g) => ({ type: "bar", name: words(g),
          data: g.steps.map(stepCount), label: { show: groups.length === 1, position: "top",
            formatter: (p) => EP.fmt(p.value) + (first ? " (" + EP.pct(p.value / first) + ")" : "") } })),
      });
      const rows = [];
      groups.forEach((g) => g.steps.forEach((s, i) => {
        const gi = g.$i;
        const count = stepCount(s);
        const prev = i ? stepCount(g.steps[i - 1]) : count;
        const head = stepCount(g.steps[0]);
        const conv = s.step_conversion_rate !== undefined ? s.step_conversion_rate : prev ? count / prev : null;
        const overall = s.conversion_rate !== undefined ? s.conversion_rate : head ? count / head : null;
        const ttc = s.time_to_convert ? s.time_to_convert.median_seconds : undefined;
        rows.push([g.breakdown ? words(g) : "", stepName(s, i),
          { text: count, attrs: { "data-testid": "step-" + gi + "-" + i, "data-value": count } },
          { text: EP.pct(conv), attrs: { "data-testid": "conv-" + gi + "-" + i } },
          { text: EP.pct(overall), attrs: { "data-testid": "overall-" + gi + "-" + i } },
          ttc === undefined || ttc === null ? "—" : K2.seconds(ttc)]);
      }));
      out.table.replaceChildren(EP.table([t("builder.breakdown"), t("result.step"), t("result.persons"), t("result.conversion"),
        t("result.overall"), t("result.time_to_convert")], rows, "grid funnel-table"));
      if (all.length === 1) out.table.querySelectorAll("tr > :first-child").forEach((c) => (c.hidden = true));
      return first > 0;
    },
  };

  K2.seconds = function (s) {
    if (s < 120) return Math.round(s) + " " + t("time.s");
    if (s < 7200) return Math.round(s / 60) + " " + t("time.min");
    if (s < 172800) return (s / 3600).toFixed(1) + " " + t("time.h");
    return (s / 86400).toFixed(1) + " " + t("time.d");
  };

  // retention ---------------------------------------------------------------------------------
  /* Is retention cell (cohort starting `cohort`, k periods later) over yet? */
  function cellEnd(cohort, period, k) {
    let end = cohort;
    for (let i = 0; i <= k; i++) end = EP.periodEnd(end, period);
    return end;
  }
  K.retention = {
    defaults(cat, preset) {
      const start = firstEvent(cat, preset === "lessons" ? "course_enrolled" : null);
      const back = firstEvent(cat, "lesson_attended");
      return { kind: "retention", start_event: { event: start }, return_event: { event: back }, period: "week",
        periods: 8, date_range: { date_from: "-8w", date_to: "today" } };
    },
    form(cat, q, changed) {
      const choice = (title, key, prefix, options, fallback, testid) => F.row(title, F.select(F.choices(prefix, options),
        q[key] || fallback, (v) => { q[key] = v; changed(); }, testid));
      return [
        F.row(t("builder.start_event"), F.eventSelect(cat, q.start_event.event, (v) => { q.start_event.event = v; changed(); }, false, "start-event")),
        F.row(t("builder.return_event"), F.eventSelect(cat, q.return_event.event, (v) => { q.return_event.event = v; changed(); }, false, "return-event")),
        el("div.inline", {},
          choice(t("builder.period"), "period", "unit", ["day", "week", "month"], "day", "period"),
          F.row(t("builder.periods"), F.number(q.periods || 7, (v) => { q.periods = v; changed(); }, { min: 1, max: 120, style: "width:5em", "data-testid": "periods" }))),
        el("div.inline", {},
          choice(t("builder.cohort"), "cohort", "retention.cohort", ["first_time", "recurring"], "first_time", "cohort"),
          choice(t("builder.retention_mode"), "mode", "retention.mode", ["on", "on_or_after"], "on", "retention-mode")),
        ...common(cat, q, changed, false),
      ];
    },
    async render(result, out, opts) {
      const query = (opts && opts.query) || {};
      const all = (result.results || []).map((g, i) => Object.assign({ $i: i }, g));
      if (!all.length || !all.some((g) => g.cohorts.length)) return false;
      const names = await K2.loadGroupNames(query, all.map((g) => g.breakdown));
      const words = (g) => (g.breakdown ? K2.breakdownWords(g.breakdown, names) : t("result.average"));
      const groups = K2.arrange(all, query, (g) => g.cohorts.reduce((n, c) => n + c.size, 0), words);
      const width = (result.periods || 0) + 1;
      const now = EP.now().slice(0, 16);
      const periodName = (k) => t("period.nth_" + result.period).replace("{n}", String(k));
      const state = (c, k) => (c.values[k] === null || c.values[k] === undefined ? "future" :
        cellEnd(c.cohort, result.period, k) > now ? "incomplete" : "complete");
      const cohortPartial = (c) => c.cohort < result.date_from || EP.periodEnd(c.cohort, result.period).slice(0, 10) > EP.periodEnd(result.date_to, "day").slice(0, 10);
      /* The average of each period over the cohorts whose period is over (a period still running is left
         out, as a period that has not begun is). */
      const average = (g) => Array.from({ length: width }, (_, k) => {
        let hits = 0, base = 0;
        for (const c of g.cohorts) if (state(c, k) === "complete" && !cohortPartial(c)) { hits += c.values[k]; base += c.size; }
        return base ? hits / base : null;
      });
      const rows = [];
      groups.forEach((g) => {
        const gi = g.$i;
        const name = g.breakdown ? words(g) : "";
        const avg = average(g);
        rows.push([name, { node: el("strong", { text: t("result.average") }) }, g.cohorts.reduce((n, c) => n + (cohortPartial(c) ? 0 : c.size), 0),
          ...Array.from({ length: width - 1 }, (_, i) => ({ text: EP.pct(avg[i + 1]), attrs: { "data-testid": "avg-" + gi + "-" + (i + 1) } }))]);
        g.cohorts.forEach((c, ci) => rows.push([name,
          EP.periodCell({ text: c.cohort }, cohortPartial(c) ? "partial" : "complete"),
          { text: c.size, attrs: { "data-testid": "size-" + gi + "-" + ci, "data-value": c.size } },
          ...Array.from({ length: width - 1 }, (_, j) => {
            const k = j + 1;
            const v = c.values[k];
            const s = state(c, k);
            if (s === "future") return { text: "", cls: "period-future", title: t("period.future") };
            const share = c.size ? v / c.size : 0;
            const cell = { node: el("span", {}, EP.fmt(v), el("small", { text: " " + EP.pct(share) })),
              attrs: { "data-testid": "ret-" + gi + "-" + ci + "-" + k, "data-value": v, class: "heat" },
              style: s === "complete" ? "background: rgba(37, 99, 235, " + (0.06 + 0.8 * share).toFixed(2) + ")" + (share > 0.5 ? ";color:#fff" : "") : "" };
            return EP.periodCell(cell, s);
          })]));
      });
      const labels = Array.from({ length: width - 1 }, (_, i) => periodName(i + 1));
      EP.chart(out.chart, { legend: { top: 0 }, xAxis: { type: "category", data: labels },
        yAxis: { type: "value", axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } },
        tooltip: { trigger: "axis", confine: true, valueFormatter: (v) => EP.pct(v) },
        series: groups.slice(0, 10).map((g) => ({ type: "line", name: words(g), connectNulls: false, data: average(g).slice(1) })) });
      const states = groups.flatMap((g) => g.cohorts.flatMap((c) => [cohortPartial(c) ? "partial" : "complete",
        ...Array.from({ length: width - 1 }, (_, j) => (state(c, j + 1) === "incomplete" ? "incomplete" : "complete"))]));
      out.table.replaceChildren(EP.table([t("builder.breakdown"), t("builder.cohort"), t("result.cohort_size"), ...labels], rows, "grid retention-table"),
        EP.periodNote(states) || "");
      if (all.length === 1) out.table.querySelectorAll("tr > :first-child").forEach((c) => (c.hidden = true));
      return true;
    },
  };

  // any other kind: its result's first list of rows as a table -----------------------------------
  EP.genericRender = function (result, out) {
    out.chart.hidden = true;
    const skip = new Set(["sql", "timings", "cached", "kind", "timezone"]);
    const lists = Object.entries(result).filter(([k, v]) => !skip.has(k) && Array.isArray(v) && v.length && typeof v[0] === "object");
    if (!lists.length) {
      out.table.replaceChildren(el("pre", { translate: "no", text: JSON.stringify(result, null, 2) }));
      return true;
    }
    const [, rows] = lists[0];
    const columns = Object.keys(rows[0]);
    out.table.replaceChildren(EP.table(columns.map((c) => EP.u(c)), rows.map((r) => columns.map((c) =>
      ({ text: typeof r[c] === "object" && r[c] !== null ? JSON.stringify(r[c]) : r[c], user: typeof r[c] === "string" || typeof r[c] === "object" })))));
    return true;
  };
})();
