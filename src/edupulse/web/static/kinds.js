/* The analysis builder's models: each kind is one form definition (defaults + form) and one renderer.
   Adding a kind = adding one entry here (and its messages). Kinds without a renderer show a table of the
   result's rows (the generic renderer). */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, F = EP.fields;
  const K = EP.kinds;
  const MATHS = ["total", "unique_persons", "avg_per_person", "sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99"];
  const PROPERTY_MATHS = MATHS.slice(3);
  const firstEvent = (cat, wanted) => (cat.events.find((e) => e.name === wanted) || cat.events[0] || {}).name || null;

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
            F.propertyInput(cat, item.property, (v) => { item.property = v; changed(); }, key + "-property-" + i) : "");
          parts.push(F.select(MATHS.map((m) => [m, t("math." + m)]), item.math || "total", (v) => {
            item.math = v;
            if (!PROPERTY_MATHS.includes(v)) delete item.property;
            drawProp();
            changed();
          }, key + "-math-" + i), propBox);
          drawProp();
        }
        if (list.length > (opts.min || 1))
          parts.push(el("button.link.danger", { type: "button", text: "×", "data-testid": key + "-remove-" + i,
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

  function common(cat, q, changed, withGranularity) {
    q.filters = q.filters || [];
    return [
      F.dateRange(q, changed),
      withGranularity ? F.granularity(q, changed) : null,
      el("div.field", {}, el("span.field-label", { text: t("builder.filters") }), F.filters(cat, q.filters, changed, "global")),
      F.breakdown(cat, q, changed),
    ];
  }

  function seriesName(s) {
    const label = s.label || s.name || s.event || t("builder.any_event");
    return s.breakdown && s.breakdown.length ? label + " · " + s.breakdown.map((b) => (b === null ? "∅" : b)).join(" / ") : label;
  }

  // trends ------------------------------------------------------------------------------------
  K.trends = {
    chartTypes: true,
    defaults(cat, preset) {
      const event = preset === "attendance" ? firstEvent(cat, "lesson_attended") : firstEvent(cat);
      return { kind: "trends", series: [{ event: event, math: preset === "attendance" ? "unique_persons" : "total" }],
        date_range: { date_from: "-30d", date_to: "today" }, granularity: "day" };
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
    render(result, out, opts) {
      const series = result.series || [];
      if (!series.length) return false;
      const kind = (opts && opts.chartType) || "line";
      EP.chart(out.chart, {
        legend: { type: "scroll", top: 0 },
        xAxis: { type: "category", data: result.buckets },
        yAxis: { type: "value" },
        series: series.map((s) => ({ name: seriesName(s), type: kind, data: s.data, showSymbol: result.buckets.length < 60 }))
          .concat(((result.previous || {}).series || []).map((s) => ({ name: seriesName(s) + " · " + t("builder.previous"),
            type: "line", data: s.data, lineStyle: { type: "dashed" }, showSymbol: false }))),
      });
      const rows = series.map((s, i) => [seriesName(s),
        { text: s.aggregated_value, attrs: { "data-testid": "agg-" + i, "data-value": s.aggregated_value } },
        ...s.data.map((v, j) => ({ text: v, attrs: { "data-testid": "cell-" + i + "-" + j, "data-value": v } }))]);
      out.table.replaceChildren(EP.table([t("builder.series"), t("result.total"), ...result.buckets], rows, "grid trends-table"));
      return series.some((s) => s.aggregated_value || s.data.some((v) => v));
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
        date_range: { date_from: "-30d", date_to: "today" } };
    },
    form(cat, q, changed) {
      q.window = q.window || { value: 14, unit: "day" };
      return [
        el("div.field", {}, el("span.field-label", { text: t("builder.steps") }),
          eventList(cat, q, "steps", changed, { allowAny: false, min: 2, addLabel: t("builder.add_step") })),
        el("div.inline", {},
          F.row(t("builder.window"), F.number(q.window.value, (v) => { q.window.value = v; changed(); }, { min: 1, style: "width:6em", "data-testid": "window-value" })),
          F.row(t("builder.window_unit"), F.select(["minute", "hour", "day", "week"].map((u) => [u, u]), q.window.unit,
            (v) => { q.window.unit = v; changed(); }, "window-unit")),
          F.row(t("builder.order"), F.select(["ordered", "strict", "any"].map((o) => [o, o]), q.order || "ordered",
            (v) => { q.order = v; changed(); }, "funnel-order")),
          F.row(t("builder.conversion_trend"), F.select([["", t("builder.none")], ["day", "day"], ["week", "week"], ["month", "month"]],
            q.trend || "", (v) => { if (v) q.trend = v; else delete q.trend; changed(); }, "funnel-trend"))),
        ...common(cat, q, changed, false),
      ];
    },
    render(result, out) {
      const groups = result.results || (result.steps ? [{ breakdown: null, steps: result.steps }] : []);
      if (!groups.length || !groups[0].steps.length) return false;
      const main = groups[0].steps;
      const first = stepCount(main[0]) || 0;
      if (result.trend) EP.chart(out.chart, {
        legend: { top: 0 }, xAxis: { type: "category", data: result.trend.buckets },
        yAxis: [{ type: "value" }, { type: "value", axisLabel: { formatter: (v) => Math.round(v * 100) + "%" }, max: 1 }],
        series: [{ type: "bar", name: t("result.entered"), data: result.trend.entered },
          { type: "bar", name: t("result.converted"), data: result.trend.converted },
          { type: "line", name: t("result.conversion"), yAxisIndex: 1, data: result.trend.conversion_rate }],
      });
      else EP.chart(out.chart, {
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: main.map((s, i) => i + 1 + ". " + (s.event || s.name)) },
        yAxis: { type: "value" },
        series: groups.slice(0, 10).map((g) => ({ type: "bar", name: g.breakdown ? [].concat(g.breakdown).join(" / ") : t("result.count"),
          data: g.steps.map(stepCount), label: { show: groups.length === 1, position: "top",
            formatter: (p) => EP.fmt(p.value) + (first ? " (" + EP.pct(p.value / first) + ")" : "") } })),
      });
      const rows = [];
      groups.forEach((g, gi) => g.steps.forEach((s, i) => {
        const count = stepCount(s);
        const prev = i ? stepCount(g.steps[i - 1]) : count;
        const head = stepCount(g.steps[0]);
        const conv = s.step_conversion_rate !== undefined ? s.step_conversion_rate : prev ? count / prev : null;
        const overall = s.conversion_rate !== undefined ? s.conversion_rate : head ? count / head : null;
        const ttc = s.time_to_convert ? s.time_to_convert.median_seconds : undefined;
        rows.push([g.breakdown ? [].concat(g.breakdown).join(" / ") : "", i + 1 + ". " + (s.event || s.name),
          { text: count, attrs: { "data-testid": "step-" + gi + "-" + i, "data-value": count } },
          { text: EP.pct(conv), attrs: { "data-testid": "conv-" + gi + "-" + i } },
          { text: EP.pct(overall), attrs: { "data-testid": "overall-" + gi + "-" + i } },
          ttc === undefined || ttc === null ? "—" : formatSeconds(ttc)]);
      }));
      out.table.replaceChildren(EP.table([t("builder.breakdown"), t("result.step"), t("result.count"), t("result.conversion"),
        t("result.overall"), t("result.time_to_convert")], rows, "grid funnel-table"));
      if (groups.length === 1) out.table.querySelectorAll("tr > :first-child").forEach((c) => (c.hidden = true));
      return first > 0;
    },
  };

  function formatSeconds(s) {
    if (s < 120) return Math.round(s) + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  // retention ---------------------------------------------------------------------------------
  K.retention = {
    defaults(cat, preset) {
      const start = firstEvent(cat, preset === "lessons" ? "course_enrolled" : null);
      const back = firstEvent(cat, "lesson_attended");
      return { kind: "retention", start_event: { event: start }, return_event: { event: back }, period: "week",
        periods: 8, date_range: { date_from: "-8w", date_to: "today" } };
    },
    form(cat, q, changed) {
      const choice = (title, key, options, fallback, testid) => F.row(title, F.select(options.map((o) => [o, o]),
        q[key] || fallback, (v) => { q[key] = v; changed(); }, testid));
      return [
        F.row(t("builder.start_event"), F.eventSelect(cat, q.start_event.event, (v) => { q.start_event.event = v; changed(); }, false, "start-event")),
        F.row(t("builder.return_event"), F.eventSelect(cat, q.return_event.event, (v) => { q.return_event.event = v; changed(); }, false, "return-event")),
        el("div.inline", {},
          choice(t("builder.period"), "period", ["day", "week", "month"], "day", "period"),
          F.row(t("builder.periods"), F.number(q.periods || 7, (v) => { q.periods = v; changed(); }, { min: 1, max: 120, style: "width:5em", "data-testid": "periods" }))),
        el("div.inline", {},
          choice(t("builder.cohort"), "cohort", ["first_time", "recurring"], "first_time", "cohort"),
          choice(t("builder.retention_mode"), "mode", ["on", "on_or_after"], "on", "retention-mode")),
        ...common(cat, q, changed, false),
      ];
    },
    render(result, out) {
      const groups = result.results || [];
      if (!groups.length || !groups.some((g) => g.cohorts.length)) return false;
      const width = (result.periods || 0) + 1;
      const rows = [];
      groups.forEach((g, gi) => {
        const name = g.breakdown ? [].concat(g.breakdown).map((v) => (v === null ? "∅" : v)).join(" / ") : "";
        const avg = g.average || { values: [], rates: [] };
        rows.push([name, { node: el("strong", { text: t("result.average") }) }, avg.values[0],
          ...Array.from({ length: width - 1 }, (_, i) => EP.pct(avg.rates[i + 1]))]);
        g.cohorts.forEach((c, ci) => rows.push([name, c.cohort,
          { text: c.size, attrs: { "data-testid": "size-" + gi + "-" + ci, "data-value": c.size } },
          ...Array.from({ length: width - 1 }, (_, k) => {
            const v = c.values[k + 1];
            if (v === undefined || v === null) return "";
            const share = c.size ? v / c.size : 0;
            return { node: el("span", {}, EP.fmt(v), el("small", { text: " " + EP.pct(share) })),
              attrs: { "data-testid": "ret-" + gi + "-" + ci + "-" + (k + 1), "data-value": v, class: "heat" },
              style: "background: rgba(37, 99, 235, " + (0.06 + 0.8 * share).toFixed(2) + ")" + (share > 0.5 ? ";color:#fff" : "") };
          })]));
      });
      const avg = groups[0].average;
      EP.chart(out.chart, { legend: { top: 0 }, xAxis: { type: "category", data: Array.from({ length: width - 1 }, (_, i) => result.period + " " + (i + 1)) },
        yAxis: { type: "value", axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } },
        series: groups.slice(0, 10).map((g) => ({ type: "line", name: g.breakdown ? [].concat(g.breakdown).join(" / ") : t("result.average"),
          data: (g.average ? g.average.rates : avg.rates).slice(1) })) });
      out.table.replaceChildren(EP.table([t("builder.breakdown"), t("builder.cohort"), t("result.cohort_size"),
        ...Array.from({ length: width - 1 }, (_, i) => result.period + " " + (i + 1))], rows, "grid retention-table"));
      if (groups.length === 1) out.table.querySelectorAll("tr > :first-child").forEach((c) => (c.hidden = true));
      return true;
    },
  };

  // any other kind: its result's first list of rows as a table -----------------------------------
  EP.genericRender = function (result, out) {
    out.chart.hidden = true;
    const skip = new Set(["sql", "timings", "cached", "kind", "timezone"]);
    const lists = Object.entries(result).filter(([k, v]) => !skip.has(k) && Array.isArray(v) && v.length && typeof v[0] === "object");
    if (!lists.length) {
      out.table.replaceChildren(el("pre", { text: JSON.stringify(result, null, 2) }));
      return true;
    }
    const [, rows] = lists[0];
    const columns = Object.keys(rows[0]);
    out.table.replaceChildren(EP.table(columns, rows.map((r) => columns.map((c) =>
      typeof r[c] === "object" && r[c] !== null ? JSON.stringify(r[c]) : r[c]))));
    return true;
  };
})();
