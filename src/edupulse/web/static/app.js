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
  EP.pct = (v) => (v === null || v === undefined || isNaN(v) ? "—" : (Math.round(v * 1000) / 10).toFixed(1) + "%");

  /* A table from column titles and rows of cells (a cell is text or {text, attrs, style}). */
  EP.table = function (columns, rows, cls) {
    const head = EP.el("thead", {}, EP.el("tr", {}, columns.map((c) => EP.el("th", { text: c }))));
    const body = EP.el("tbody", {}, rows.map((row) => EP.el("tr", {}, row.map((cell) => {
      if (cell instanceof Node) return EP.el("td", {}, cell);
      if (cell && typeof cell === "object") {
        const td = EP.el("td", cell.attrs || {}, cell.node || EP.fmt(cell.text));
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
    chart.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis" }, grid: { left: 60, right: 20, top: 40, bottom: 40 } }, option), true);
    return chart;
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

  /* The data catalogue, loaded once per page, for the event and property pickers. */
  EP.catalogue = function () {
    if (!EP._catalogue) EP._catalogue = EP.api("GET", "/api/v1/catalog").catch((err) => {
      EP.toast(err.message, true);
      return { events: [], properties: [], person_properties: [] };
    });
    return EP._catalogue;
  };
})();
