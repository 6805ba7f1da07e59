/* More analysis models of the builder: distribution, interval, LTV, paths, attribution. Same contract as
   kinds.js: defaults (the query a new analysis starts from), form (controls bound to the query), render. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields, K = EP.kinds, H = EP.kindHelpers;
  const firstEvent = (cat, wanted) => (cat.events.find((e) => e.name === wanted) || cat.events[0] || {}).name || null;
  const range = (days) => ({ date_from: "-" + (days - 1) + "d", date_to: "today" });
  const cell = (value, testid) => ({ text: value, attrs: { "data-testid": testid, "data-value": value } });

  function common(cat, q, changed, breakdown) {
    q.filters = q.filters || [];
    return [F.dateRange(q, changed),
      el("div.field", {}, el("span.field-label", { text: t("builder.filters") }), F.filters(cat, q.filters, changed, "global")),
      breakdown === false ? null : F.breakdown(cat, q, changed)];
  }
  const eventRow = (cat, title, obj, key, changed, testid, allowAny) =>
    F.row(title, F.eventSelect(cat, obj[key], (v) => { if (v) obj[key] = v; else delete obj[key]; changed(); }, allowAny, testid));
  const numberRow = (title, obj, key, changed, testid, attrs) =>
    F.row(title, F.number(obj[key], (v) => { obj[key] = v; changed(); }, Object.assign({ "data-testid": testid, style: "width:6em" }, attrs || {})));
  const selectRow = (title, obj, key, prefix, options, changed, testid) =>
    F.row(title, F.select(F.choices(prefix, options), obj[key], (v) => { obj[key] = v; changed(); }, testid));
  async function arranged(result, query, list, total) {
    const all = list.map((s, i) => Object.assign({ $i: i }, s));
    const names = await H.loadGroupNames(query, all.map((s) => s.breakdown));
    const words = (s) => (s.breakdown ? H.breakdownWords(s.breakdown, names) : t("result.total"));
    return { items: H.arrange(all, query, total, words), words: words };
  }

  K.distribution = {
    defaults: (cat) => ({ kind: "distribution", event: firstEvent(cat, "lesson_attended"), measure: "count", date_range: range(30) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.event"), q, "event", changed, "dist-event", true),
        selectRow(t("builder.math"), q, "measure", "distribution.measure", ["count", "days", "sum"], changed, "dist-measure"),
        F.row(t("builder.property"), F.propertySelect(cat, q.property, (v) => { q.property = v; changed(); }, "dist-property")),
        ...common(cat, q, changed)];
    },
    async render(result, out, opts) {
      const { items, words } = await arranged(result, opts && opts.query, result.series, (s) => s.counts.reduce((a, b) => a + b, 0));
      const labels = result.buckets.map((b) => b.label);
      EP.chart(out.chart, { legend: { top: 0, type: "scroll" }, xAxis: { type: "category", data: labels, name: t("distribution.measure." + (result.measure || "count")) },
        yAxis: { type: "value", name: t("axis.persons") },
        series: items.map((s) => ({ type: "bar", name: words(s), data: s.counts })) });
      out.table.replaceChildren(EP.table([t("result.bucket"), ...items.map(words)],
        labels.map((l, i) => [l, ...items.map((s) => cell(s.counts[i], "dist-" + s.$i + "-" + i))])));
      return result.series.length > 0;
    },
  };

  const STATS = ["count", "min", "p25", "median", "p75", "p90", "max", "mean"];
  K.interval = {
    defaults: (cat) => ({ kind: "interval", start: { event: firstEvent(cat, "trial_booked") }, end: { event: firstEvent(cat, "order_paid") },
      window_days: 30, date_range: range(60) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.start_event"), q.start, "event", changed, "interval-start", true),
        eventRow(cat, t("builder.end_event"), q.end, "event", changed, "interval-end", true),
        numberRow(t("builder.window_days"), q, "window_days", changed, "interval-window", { min: 1, max: 3650 }),
        ...common(cat, q, changed)];
    },
    async render(result, out, opts) {
      if (!result.series.length) return false;
      const { items, words } = await arranged(result, opts && opts.query, result.series, (s) => s.count || 0);
      const labels = result.buckets.map((b) => b.label);
      EP.chart(out.chart, { legend: { top: 0, type: "scroll" }, xAxis: { type: "category", data: labels }, yAxis: { type: "value", name: t("axis.persons") },
        series: items.slice(0, 10).map((s) => ({ type: "bar", name: words(s), data: s.histogram })) });
      out.table.replaceChildren(EP.table([t("builder.breakdown"), ...STATS.map((k) => t("stat." + k))], items.map((s) =>
        [words(s), ...STATS.map((k) => (k === "count" ? cell(s.count, "interval-" + s.$i + "-count") :
          { text: (s.display || {})[k] || s[k], attrs: { "data-testid": "interval-" + s.$i + "-" + k, "data-value": s[k] } }))])));
      return true;
    },
  };

  K.ltv = {
    defaults: (cat) => ({ kind: "ltv", start: { event: firstEvent(cat, "lead_created") },
      revenue: { event: firstEvent(cat, "order_paid"), property: "amount" }, days: [0, 1, 7, 14, 30, 60], cohort: "week", date_range: range(90) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.start_event"), q.start, "event", changed, "ltv-start", false),
        eventRow(cat, t("builder.revenue_event"), q.revenue, "event", changed, "ltv-revenue", false),
        F.row(t("builder.value_property"), F.propertySelect(cat, q.revenue.property, (v) => { q.revenue.property = v; changed(); }, "ltv-property")),
        F.row(t("builder.days_n"), F.text(q.days.join(","), (v) => { q.days = v.split(",").map(Number).filter((n) => !isNaN(n)); changed(); }, { "data-testid": "ltv-days" })),
        selectRow(t("builder.cohort"), q, "cohort", "unit", ["day", "week", "month"], changed, "ltv-cohort"),
        ...common(cat, q, changed)];
    },
    async render(result, out, opts) {
      if (!result.series.length) return false;
      const { items, words } = await arranged(result, opts && opts.query, result.series, (s) => s.size || 0);
      const days = result.days.map((d) => t("ltv.day_n").replace("{n}", String(d)));
      EP.chart(out.chart, { legend: { top: 0, type: "scroll" }, xAxis: { type: "category", data: days },
        yAxis: { type: "value", name: t("ltv.per_person") },
        series: items.slice(0, 10).map((s) => ({ type: "line", name: words(s), data: s.per_person })) });
      const rows = [];
      items.forEach((s) => {
        rows.push([words(s), t("result.average"), s.size, ...s.per_person.map((v, i) => cell(v, "ltv-" + s.$i + "-" + i))]);
        for (const c of s.cohorts || []) rows.push(["", c.cohort, c.size, ...c.revenue.map((v) => (v === null ?
          { text: "", cls: "period-future", title: t("period.future") } : c.size ? v / c.size : 0))]);
      });
      out.table.replaceChildren(EP.table([t("builder.breakdown"), t("builder.cohort"), t("result.cohort_size"), ...days], rows));
      return true;
    },
  };

  K.paths = {
    // where new leads go next: a question operators ask, and a start event rarer than page views
    defaults: (cat) => ({ kind: "paths", start_event: firstEvent(cat, "lead_created"), steps: 5, date_range: range(7) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.start_event"), q, "start_event", changed, "paths-start", true),
        eventRow(cat, t("builder.end_event"), q, "end_event", changed, "paths-end", true),
        numberRow(t("builder.steps"), q, "steps", changed, "paths-steps", { min: 2, max: 10 }),
        ...common(cat, q, changed, false)];
    },
    render(result, out) {
      if (!result.nodes.length) return false;
      const name = (n) => EP.eventLabel(String(n).replace(/^\d+:/, ""));
      // One column per step: the chart gets taller with the busiest column, so labels never overlap.
      const perColumn = {};
      for (const n of result.nodes) { const c = Number(String(n.name).split(":")[0]) || 0; perColumn[c] = (perColumn[c] || 0) + 1; }
      const busiest = Math.max(1, ...Object.values(perColumn));
      out.chart.style.height = Math.max(360, Math.min(1600, busiest * 34 + 60)) + "px";
      const chart = EP.chart(out.chart, { tooltip: { trigger: "item", confine: true }, series: [{ type: "sankey", left: 10, right: 150, top: 20, bottom: 20,
        nodeGap: 14, nodeWidth: 12, layoutIterations: 64, emphasis: { focus: "adjacency" },
        labelLayout: { hideOverlap: true },
        data: result.nodes.map((n) => ({ name: n.name, value: n.count })),
        links: result.transitions.map((l) => ({ source: l.source, target: l.target, value: l.count })),
        label: { position: "right", fontSize: 11, width: 130, overflow: "truncate", formatter: (p) => name(p.name) } }] });
      if (chart) chart.resize();
      out.table.replaceChildren(EP.table(["#", t("result.persons"), t("result.path")], result.paths.map((p, i) =>
        [i + 1, cell(p.count, "path-" + i), { text: p.path.map((e) => EP.eventLabel(e)).join(" → "), cls: "wrap" }])));
      return true;
    },
  };

  K.attribution = {
    defaults: (cat) => ({ kind: "attribution", conversion: { event: firstEvent(cat, "order_paid"), value: "amount" },
      touches: [{ event: firstEvent(cat, "ad_click"), channel: "utm_source" }], lookback_days: 30, date_range: range(30) }),
    form(cat, q, changed) {
      const touches = el("div.event-list", {}, q.touches.map((touch, i) => el("div.inline", {},
        F.eventSelect(cat, touch.event, (v) => { touch.event = v; changed(); }, false, "touch-event-" + i),
        F.propertySelect(cat, touch.channel, (v) => { touch.channel = v; changed(); }, "touch-channel-" + i))));
      return [eventRow(cat, t("builder.conversion_event"), q.conversion, "event", changed, "conversion-event", false),
        F.row(t("builder.value_property"), F.propertySelect(cat, q.conversion.value, (v) => { q.conversion.value = v; changed(); }, "conversion-value")),
        el("div.field", {}, el("span.field-label", { text: t("builder.touches") }), touches),
        numberRow(t("builder.lookback_days"), q, "lookback_days", changed, "lookback", { min: 1, max: 365 }),
        ...common(cat, q, changed, false)];
    },
    render(result, out, opts) {
      const models = result.models;
      const channels = result.channels.slice(0, 30);
      // The value property is whatever the analysis names (an amount in any currency, points...): a plain number.
      const money = (v) => (v === null || v === undefined ? "—" : EP.fmt(Math.round(v)));
      const model = (m) => t("attribution.model." + m, m);
      // Conversions per channel and model as bars (counts), revenue per model on a second axis as points.
      EP.chart(out.chart, {
        legend: { top: 0, type: "scroll" }, tooltip: { trigger: "axis", confine: true },
        grid: { left: 50, right: 70, top: 50, bottom: 40, containLabel: true },
        xAxis: { type: "category", data: channels.map((c) => EP.valueLabel(c.channel)), axisLabel: { interval: 0, rotate: channels.length > 8 ? 30 : 0 } },
        yAxis: [{ type: "value", name: t("attribution.conversions") }, { type: "value", name: t("attribution.revenue"), position: "right", splitLine: { show: false } }],
        series: [...models.map((m) => ({ type: "bar", name: model(m) + " · " + t("attribution.conversions"), data: channels.map((c) => c.models[m].conversions) })),
          ...models.map((m) => ({ type: "line", name: model(m) + " · " + t("attribution.revenue"), yAxisIndex: 1, symbol: "diamond", symbolSize: 9,
            lineStyle: { width: 0 }, data: channels.map((c) => c.models[m].revenue) }))],
      });
      // One column per model holding conversions and revenue, so that the table fits the page.
      const head = [t("attribution.channel"), t("attribution.touched"), ...models.map(model)];
      out.table.replaceChildren(EP.table(head, result.channels.map((c, ci) => [{ text: EP.valueLabel(c.channel) }, c.conversions_touched,
        ...models.map((m) => ({ node: el("span.two-line", {}, el("span", { text: EP.fmt(c.models[m].conversions) }),
          el("small.muted", { text: money(c.models[m].revenue) })), attrs: { "data-testid": "attr-" + ci + "-" + m, "data-value": c.models[m].conversions } }))]),
      "grid attribution-table fit"));
      return result.channels.length > 0;
    },
  };
})();
