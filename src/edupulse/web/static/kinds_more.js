/* More analysis models of the builder: distribution, interval, LTV, paths, attribution. Same contract as
   kinds.js: defaults (the query a new analysis starts from), form (controls bound to the query), render. */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields, K = EP.kinds;
  const firstEvent = (cat, wanted) => (cat.events.find((e) => e.name === wanted) || cat.events[0] || {}).name || null;
  const range = (days) => ({ date_from: "-" + days + "d", date_to: "today" });
  const label = (b) => (b ? [].concat(b).map((v) => (v === null ? "∅" : v)).join(" / ") : t("result.total"));
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
  const selectRow = (title, obj, key, options, changed, testid) =>
    F.row(title, F.select(options.map((o) => [o, o]), obj[key], (v) => { obj[key] = v; changed(); }, testid));

  K.distribution = {
    defaults: (cat) => ({ kind: "distribution", event: firstEvent(cat, "lesson_attended"), measure: "count", date_range: range(30) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.event"), q, "event", changed, "dist-event", true),
        selectRow(t("builder.math"), q, "measure", ["count", "days", "sum"], changed, "dist-measure"),
        F.row(t("builder.property"), F.propertyInput(cat, q.property, (v) => { q.property = v; changed(); }, "dist-property")),
        ...common(cat, q, changed)];
    },
    render(result, out) {
      const labels = result.buckets.map((b) => b.label);
      EP.chart(out.chart, { legend: { top: 0 }, xAxis: { type: "category", data: labels }, yAxis: { type: "value" },
        series: result.series.map((s) => ({ type: "bar", name: label(s.breakdown), data: s.counts })) });
      out.table.replaceChildren(EP.table([t("result.bucket"), ...result.series.map((s) => label(s.breakdown))],
        labels.map((l, i) => [l, ...result.series.map((s, si) => cell(s.counts[i], "dist-" + si + "-" + i))])));
      return result.series.length > 0;
    },
  };

  K.interval = {
    defaults: (cat) => ({ kind: "interval", start: { event: firstEvent(cat, "trial_booked") }, end: { event: firstEvent(cat, "order_paid") },
      window_days: 30, date_range: range(60) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.start_event"), q.start, "event", changed, "interval-start", true),
        eventRow(cat, t("builder.end_event"), q.end, "event", changed, "interval-end", true),
        numberRow(t("builder.window_days"), q, "window_days", changed, "interval-window", { min: 1, max: 3650 }),
        ...common(cat, q, changed)];
    },
    render(result, out) {
      if (!result.series.length) return false;
      const labels = result.buckets.map((b) => b.label);
      EP.chart(out.chart, { legend: { top: 0 }, xAxis: { type: "category", data: labels }, yAxis: { type: "value" },
        series: result.series.slice(0, 10).map((s) => ({ type: "bar", name: label(s.breakdown), data: s.histogram })) });
      const stats = ["count", "min", "p25", "median", "p75", "p90", "max", "mean"];
      out.table.replaceChildren(EP.table([t("builder.breakdown"), ...stats], result.series.map((s, si) =>
        [label(s.breakdown), ...stats.map((k) => (k === "count" ? cell(s.count, "interval-" + si + "-count") :
          { text: (s.display || {})[k] || s[k], attrs: { "data-testid": "interval-" + si + "-" + k, "data-value": s[k] } }))])));
      return true;
    },
  };

  K.ltv = {
    defaults: (cat) => ({ kind: "ltv", start: { event: firstEvent(cat, "lead_created") },
      revenue: { event: firstEvent(cat, "order_paid"), property: "amount" }, days: [0, 1, 7, 14, 30, 60], cohort: "week", date_range: range(90) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.start_event"), q.start, "event", changed, "ltv-start", false),
        eventRow(cat, t("builder.revenue_event"), q.revenue, "event", changed, "ltv-revenue", false),
        F.row(t("builder.value_property"), F.propertyInput(cat, q.revenue.property, (v) => { q.revenue.property = v; changed(); }, "ltv-property")),
        F.row(t("builder.days_n"), F.text(q.days.join(","), (v) => { q.days = v.split(",").map(Number).filter((n) => !isNaN(n)); changed(); }, { "data-testid": "ltv-days" })),
        selectRow(t("builder.cohort"), q, "cohort", ["day", "week", "month"], changed, "ltv-cohort"),
        ...common(cat, q, changed)];
    },
    render(result, out) {
      if (!result.series.length) return false;
      const days = result.days.map((d) => "D" + d);
      EP.chart(out.chart, { legend: { top: 0 }, xAxis: { type: "category", data: days }, yAxis: { type: "value" },
        series: result.series.slice(0, 10).map((s) => ({ type: "line", name: label(s.breakdown), data: s.per_person })) });
      const rows = [];
      result.series.forEach((s, si) => {
        rows.push([label(s.breakdown), t("result.total"), s.size, ...s.per_person.map((v, i) => cell(v, "ltv-" + si + "-" + i))]);
        for (const c of s.cohorts || []) rows.push(["", c.cohort, c.size, ...c.revenue.map((v) => (v === null ? "" : c.size ? v / c.size : 0))]);
      });
      out.table.replaceChildren(EP.table([t("builder.breakdown"), t("builder.cohort"), t("result.cohort_size"), ...days], rows));
      return true;
    },
  };

  K.paths = {
    defaults: (cat) => ({ kind: "paths", start_event: firstEvent(cat, "page_view"), steps: 5, date_range: range(7) }),
    form(cat, q, changed) {
      return [eventRow(cat, t("builder.start_event"), q, "start_event", changed, "paths-start", true),
        eventRow(cat, t("builder.end_event"), q, "end_event", changed, "paths-end", true),
        numberRow(t("builder.steps"), q, "steps", changed, "paths-steps", { min: 2, max: 10 }),
        ...common(cat, q, changed, false)];
    },
    render(result, out) {
      if (!result.nodes.length) return false;
      EP.chart(out.chart, { tooltip: { trigger: "item" }, series: [{ type: "sankey", emphasis: { focus: "adjacency" },
        data: result.nodes.map((n) => ({ name: n.name, value: n.count, label: { formatter: n.label } })),
        links: result.transitions.map((l) => ({ source: l.source, target: l.target, value: l.count })),
        label: { formatter: (p) => p.name.replace(/^\d+:/, "") } }] });
      out.table.replaceChildren(EP.table(["#", t("result.count"), "path"], result.paths.map((p, i) =>
        [i + 1, cell(p.count, "path-" + i), p.path.join(" → ")])));
      return true;
    },
  };

  K.attribution = {
    defaults: (cat) => ({ kind: "attribution", conversion: { event: firstEvent(cat, "order_paid"), value: "amount" },
      touches: [{ event: firstEvent(cat, "ad_click"), channel: "utm_source" }], lookback_days: 30, date_range: range(30) }),
    form(cat, q, changed) {
      const touches = el("div.event-list", {}, q.touches.map((touch, i) => el("div.inline", {},
        F.eventSelect(cat, touch.event, (v) => { touch.event = v; changed(); }, false, "touch-event-" + i),
        F.propertyInput(cat, touch.channel, (v) => { touch.channel = v; changed(); }, "touch-channel-" + i))));
      return [eventRow(cat, t("builder.conversion_event"), q.conversion, "event", changed, "conversion-event", false),
        F.row(t("builder.value_property"), F.propertyInput(cat, q.conversion.value, (v) => { q.conversion.value = v; changed(); }, "conversion-value")),
        el("div.field", {}, el("span.field-label", { text: t("builder.touches") }), touches),
        numberRow(t("builder.lookback_days"), q, "lookback_days", changed, "lookback", { min: 1, max: 365 }),
        ...common(cat, q, changed, false)];
    },
    render(result, out) {
      const models = result.models;
      out.chart.hidden = true;
      const head = ["channel", "touched", ...models.flatMap((m) => [m, m + " ¥"])];
      out.table.replaceChildren(EP.table(head, result.channels.map((c, ci) => [c.channel, c.conversions_touched,
        ...models.flatMap((m) => [cell(c.models[m].conversions, "attr-" + ci + "-" + m), c.models[m].revenue])])));
      return result.channels.length > 0;
    },
  };
})();
