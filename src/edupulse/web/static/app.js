/* EduPulse web UI: shared helpers (messages, API calls with the session's CSRF token, DOM, charts, tables). */
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("ep-boot").textContent);
  const EP = (window.EP = { boot: boot, kinds: {}, pages: {} });

  EP.t = function (key, fallback) {
    const text = boot.messages[key];
    return text === undefined ? (fallback === undefined ? key : fallback) : text;
  };

  /* el("div.cls", {attr: v, onclick: f}, child, ...) */
  EP.el = function (spec, attrs, ...children) {
    const [tag, ...classes] = spec.split(".");
    const node = document.createElement(tag || "div");
    if (classes.length) node.className = classes.join(" ");
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "text") node.textContent = v;
      else if (k === "value") node.value = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  };

  EP.toast = function (text, isError) {
    const box = document.getElementById("toast");
    box.textContent = text;
    box.className = "show" + (isError ? " error" : "");
    clearTimeout(EP._toastTimer);
    EP._toastTimer = setTimeout(() => (box.className = ""), 3000);
  };

  /* JSON API call with the session cookie; errors carry the server's message. */
  EP.api = async function (method, url, body, opts) {
    const headers = { "X-CSRF-Token": boot.csrf, Accept: "application/json" };
    if (boot.project) headers["X-EduPulse-Project"] = String(boot.project.id);
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method: method, headers: headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body), signal: opts && opts.signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new Error(EP.t("common.error") + ": " + "the server cannot be reached (" + err.message + ")");
    }
    if (opts && opts.raw) {
      if (!response.ok) throw new Error(await EP.errorText(response));
      return response;
    }
    if (!response.ok) throw new Error(await EP.errorText(response));
    return response.json();
  };

  EP.errorText = async function (response) {
    let message = response.status + " " + response.statusText;
    try {
      const data = await response.json();
      if (typeof data.error === "string") message = data.error;
      else if (typeof data.detail === "string") message = data.detail;
      else if (Array.isArray(data.detail))
        message = data.detail.map((d) => (d.loc || []).slice(1).join(".") + ": " + d.msg).join("; ");
    } catch (_) { /* not JSON */ }
    if (response.status === 401) message += " — " + EP.t("login.title");
    return message;
  };

  EP.showError = function (node, message) {
    if (!node) return EP.toast(message, true);
    node.hidden = !message;
    node.textContent = message ? EP.t("common.error") + ": " + message : "";
  };

  EP.fmt = function (value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return value.toLocaleString("en-US");
      return (Math.round(value * 100) / 100).toLocaleString("en-US");
    }
    return String(value);
  };
  /* Axis numbers: 12,000 as 12k (万 in Chinese), 1.5M. */
  EP.fmtShort = function (value) {
    const n = Math.abs(value);
    if (boot.lang === "zh") {
      if (n >= 1e8) return +(value / 1e8).toFixed(1) + "亿";
      if (n >= 1e4) return +(value / 1e4).toFixed(1) + "万";
      return EP.fmt(value);
    }
    if (n >= 1e6) return +(value / 1e6).toFixed(1) + "M";
    if (n >= 1e4) return +(value / 1e3).toFixed(1) + "k";
    return EP.fmt(value);
  };
  // a model score's reasons in the page's language (values carry `reasons` and `reasons_zh`)
  EP.reasons = (v) => (((document.documentElement.lang || "").startsWith("zh") ? v.reasons_zh : v.reasons) || []);
  EP.pct = (v) => (v === null || v === undefined || isNaN(v) ? "—" : (Math.round(v * 1000) / 10).toFixed(1) + "%");

  /* A table from column titles and rows of cells (a cell is text or {text, attrs, style}). */
  EP.table = function (columns, rows, cls) {
    const head = EP.el("thead", {}, EP.el("tr", {}, columns.map((c) => (c instanceof Node ? EP.el("th", {}, c) : EP.el("th", { text: c })))));
    const body = EP.el("tbody", {}, rows.map((row) => EP.el("tr", {}, row.map((cell) => {
      if (cell instanceof Node) return EP.el("td", {}, cell);
      if (cell && typeof cell === "object") {
        const td = EP.el("td", cell.attrs || {}, cell.node || (cell.user ? EP.userText(cell.text) : EP.fmt(cell.text)));
        if (cell.user) td.setAttribute("translate", "no");
        if (cell.cls) td.classList.add(...cell.cls.split(" "));
        if (cell.title) td.title = cell.title;
        if (cell.style) td.setAttribute("style", cell.style);
        return td;
      }
      return EP.el("td", {}, EP.fmt(cell));
    }))));
    return EP.el("table." + (cls || "grid"), {}, head, body);
  };

  EP.chart = function (node, option) {
    if (!window.echarts) {
      node.hidden = true;
      return null;
    }
    node.hidden = false;
    let chart = window.echarts.getInstanceByDom(node);
    if (!chart) {
      chart = window.echarts.init(node, null, { renderer: "canvas" });
      window.addEventListener("resize", () => chart.resize());
    }
    chart.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis", confine: true },
      grid: { left: 60, right: 20, top: 40, bottom: 40, containLabel: true } }, option), true);
    return chart;
  };

  /* A line whose incomplete or partial periods are drawn dashed (solid where the period is complete), or bars
     whose incomplete periods are pale: never a cliff to zero that is only today not being over yet. */
  EP.periodSeries = function (base, data, states) {
    if (!states || states.every((s) => s === "complete")) return [Object.assign({}, base, { data: data })];
    if (base.type === "bar")
      return [Object.assign({}, base, { data: data.map((v, i) => (states[i] === "complete" ? v :
        { value: v, itemStyle: { opacity: 0.4, borderType: "dashed", borderColor: "#64748b", borderWidth: 1 } })) })];
    const odd = (i) => states[i] !== undefined && states[i] !== "complete";
    const solid = data.map((v, i) => (odd(i) ? null : v));
    const dashed = data.map((v, i) => (odd(i) || odd(i - 1) || odd(i + 1) ? v : null));
    return [Object.assign({}, base, { data: solid, connectNulls: false }),
      Object.assign({}, base, { data: dashed, lineStyle: Object.assign({}, base.lineStyle || {}, { type: "dashed" }),
        symbol: "emptyCircle", connectNulls: false, z: 1, "periodPart": "incomplete" })];
  };
  /* A table cell of a period: marked when the period is not over yet or cut by the date range. */
  EP.periodCell = function (cell, state) {
    if (!state || state === "complete") return cell;
    return Object.assign({}, cell, { cls: "period-" + state, title: EP.t("period." + state) });
  };
  EP.periodNote = function (states) {
    const kinds = [...new Set((states || []).filter((s) => s !== "complete"))];
    if (!kinds.length) return null;
    return EP.el("p.period-note.muted", { "data-testid": "period-note" }, kinds.map((k) => EP.t("period.note_" + k)).join(" "));
  };

  EP.download = function (href, filename) {
    const a = EP.el("a", { href: href, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
  };

  EP.exportCsv = async function (query) {
    const response = await EP.api("POST", "/api/v1/query?format=csv", query, { raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    EP.download(url, "edupulse-" + query.kind + ".csv");
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  };

  EP.exportPng = function (node, name) {
    const chart = window.echarts && window.echarts.getInstanceByDom(node);
    if (!chart) return EP.toast(EP.t("common.error"), true);
    EP.download(chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" }), (name || "chart") + ".png");
  };

  EP.debounce = function (fn, ms) {
    let timer;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), ms);
    };
  };

  document.addEventListener("DOMContentLoaded", () => {
    const out = document.getElementById("sign-out");
    if (out) out.addEventListener("click", async () => {
      try { await EP.api("POST", "/api/v1/auth/logout"); } catch (_) { /* signed out already */ }
      location.href = "/login";
    });
  });

  /* The data catalogue, loaded once per page, for the event and property pickers (and display names). */
  EP.catalogue = function () {
    if (!EP._catalogue) EP._catalogue = EP.api("GET", "/api/v1/catalog").catch((err) => {
      EP.toast(err.message, true);
      return { events: [], properties: [], person_properties: [], groups: [] };
    }).then((cat) => { cat.groups = cat.groups || []; EP.setTexts(cat); return cat; });
    return EP._catalogue;
  };

  /* Stored names of groups (schools, institutions, classes) by key, asked for once per key. */
  EP._groupNames = {};
  EP.groupNames = async function (type, keys) {
    const known = (EP._groupNames[type] = EP._groupNames[type] || {});
    const wanted = [...new Set(keys.filter((k) => k !== null && k !== undefined && k !== "$other" && !(k in known)))];
    if (wanted.length) {
      try {
        const found = await EP.api("POST", "/api/v1/groups/names", { type: type, keys: wanted.slice(0, 500) });
        for (const k of wanted) known[k] = found.names[k] || null;
      } catch (_) { for (const k of wanted) known[k] = null; }
    }
    return known;
  };

  // words for data ------------------------------------------------------------------------------
  /* User data (names of events and properties without a display name, property values, people's names...)
     is shown as it is: marked translate="no" on the page and remembered for the translation checker. */
  EP.userStrings = new Set();
  EP.userText = function (value) {
    const text = value === null || value === undefined ? "∅" : String(value);
    EP.userStrings.add(text);
    return text;
  };
  EP.u = (value, cls) => EP.el("span" + (cls ? "." + cls : ""), { translate: "no", text: EP.userText(value) });

  /* The project's own display names and descriptions (data catalogue), by "kind:name" and language. */
  EP.texts = {};
  EP.setTexts = function (cat) {
    for (const [kind, list] of [["event", cat.events], ["property", cat.properties], ["property", (cat.person_properties || []).map((p) => ({ ...p, name: "person." + p.name }))]])
      for (const item of list || []) EP.texts[kind + ":" + item.name] = { texts: item.texts || {}, description: item.description || "" };
    for (const g of cat.groups || [])
      for (const p of g.properties || []) EP.texts["property:group." + g.type + "." + p.name] = { texts: p.texts || {}, description: p.description || "" };
  };
  /* Words a project's admins wrote are user data: shown as written, in whatever language they are. */
  function own(kind, name, field) {
    const found = EP.texts[kind + ":" + name];
    const text = found && found.texts[boot.lang] && found.texts[boot.lang][field];
    const mine = text || (field === "description" && found ? found.description : "") || "";
    return mine ? EP.userText(mine) : "";
  }
  EP.hasWord = (key) => boot.messages[key] !== undefined;

  /* An event's display name: the project's own, else the standard one, else its name (user data). */
  EP.eventLabel = function (name) {
    if (!name) return EP.t("builder.any_event");
    return own("event", name, "display_name") || EP.t("term.event." + name, null) || EP.userText(name);
  };
  EP.eventAbout = (name) => own("event", name, "description") || EP.t("term.event." + name + ".about", "");
  function propWord(name) {
    return EP.t("term.prop." + name, null) || EP.userText(name);
  }
  /* A property reference in words: amount, person.grade, group.school, group.school.city. */
  EP.propertyLabel = function (ref) {
    if (!ref) return "";
    const mine = own("property", ref, "display_name");
    if (mine) return mine;
    let m = /^group\.([^.]+)(?:\.(.+))?$/.exec(ref);
    if (m) {
      const group = EP.t("term.group." + m[1], null) || EP.userText(m[1]);
      return m[2] ? group + " · " + (own("property", "group." + m[1] + "." + m[2], "display_name") || propWord(m[2])) : group;
    }
    m = /^(event|person)\.(.+)$/.exec(ref);
    if (m) return (m[1] === "person" && own("property", "person." + m[2], "display_name")) || propWord(m[2]);
    return propWord(ref);
  };
  EP.propertyAbout = function (ref) {
    const mine = own("property", ref, "description");
    if (mine) return mine;
    const base = ref.replace(/^(event|person)\./, "").replace(/^group\.[^.]+\./, "");
    return EP.t("term.prop." + base + ".about", "");
  };
  /* The words of a value in a legend: null is "(not set)", $other "other values". */
  EP.valueLabel = function (value) {
    if (value === null || value === undefined) return EP.t("result.not_set");
    if (value === "$other") return EP.t("result.other");
    return EP.userText(value);
  };

  // times in the project's zone --------------------------------------------------------------------
  EP.tz = (boot.project && boot.project.timezone) || "Asia/Shanghai";
  const wallFormat = new Intl.DateTimeFormat("en-CA", { timeZone: EP.tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  /* "YYYY-MM-DD HH:MM:SS" wall-clock time in the project's zone of a Date. */
  EP.wall = function (date) {
    const parts = {};
    for (const p of wallFormat.formatToParts(date)) parts[p.type] = p.value;
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" + parts.second;
  };
  /* A moment (ISO text with an offset, a Date, or epoch microseconds) as a time in the project's zone. */
  EP.time = function (value, withSeconds) {
    if (value === null || value === undefined || value === "") return "—";
    let date;
    if (value instanceof Date) date = value;
    else if (typeof value === "number") date = new Date(value > 1e14 ? value / 1000 : value > 1e11 ? value : value * 1000);
    else date = new Date(value);
    if (isNaN(date.getTime())) return String(value);
    return EP.wall(date).slice(0, withSeconds ? 19 : 16);
  };
  EP.now = () => EP.wall(new Date());

  /* Incomplete periods. Bucket labels are wall-clock starts ("2026-09-01" or "2026-09-01T10:00") in the
     project's zone; a bucket is incomplete when its end is after now, and partial when it starts before the
     first day of the range (a week or month cut by date_from). */
  function addPeriod(start, granularity) {
    const [d, tm] = start.split(/[T ]/);
    const [y, mo, da] = d.split("-").map(Number);
    const [h, mi] = (tm || "00:00").split(":").map(Number);
    const date = new Date(Date.UTC(y, mo - 1, da, h, mi));
    if (granularity === "minute") date.setUTCMinutes(date.getUTCMinutes() + 1);
    else if (granularity === "hour") date.setUTCHours(date.getUTCHours() + 1);
    else if (granularity === "day") date.setUTCDate(date.getUTCDate() + 1);
    else if (granularity === "week") date.setUTCDate(date.getUTCDate() + 7);
    else date.setUTCMonth(date.getUTCMonth() + 1);
    return date.toISOString().slice(0, 16).replace("T", " ");
  }
  EP.periodEnd = addPeriod;
  EP.bucketState = function (labels, granularity, dateFrom, dateTo, now) {
    const current = (now || EP.now()).slice(0, 16);
    const after = dateTo ? addPeriod(dateTo, "day") : null;
    return labels.map((label) => {
      const start = label.replace("T", " ");
      const end = addPeriod(label, granularity);
      if (end > current) return "incomplete";
      if ((dateFrom && start.slice(0, 10) < dateFrom) || (after && end > after)) return "partial";
      return "complete";
    });
  };

})();
