/* Scenario packs: the headline number on each card of the Scenarios home, and one pack's page (install,
   upgrade, uninstall, its numbers for a period, the empty state naming the events to send). */
"use strict";
(function () {
  const EP = window.EP, el = EP.el, t = EP.t, P = EP.pages;
  const $ = (id) => document.getElementById(id);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : values[k]));

  /* A card's number in its unit: a share as %, a ratio with two decimals, money and counts as numbers. */
  const number = (value, unit) => {
    if (value === null || value === undefined) return t("packs.no_number");
    if (unit === "%") return EP.pct(value);
    if (unit === "ratio") return (Math.round(value * 100) / 100).toFixed(2);
    return EP.fmt(value);
  };

  P.home = async function (data) {
    await Promise.all((data.packs || []).filter((p) => p.available).map(async (p) => {
      const node = document.querySelector('[data-headline="' + p.name + '"]');
      try {
        const found = await EP.api("GET", "/api/v1/packs/" + p.name + "/headline");
        node.textContent = found.empty && found.card.value === null ? t("packs.no_number") : number(found.card.value, found.card.unit);
        if (found.empty) node.title = fill(t("packs.empty"), { events: found.missing_events.map(EP.eventLabel).join(", ") });
      } catch (err) { node.title = err.message; }
    }));
  };

  // one pack's page --------------------------------------------------------------------------------

  /* A table whose columns sort when their title is clicked (numbers largest first, text A to Z). */
  function sortable(columns, rows, best) {
    let order = { key: null, down: true };
    const wrap = el("div");
    const draw = () => {
      const sorted = rows.slice();
      if (order.key) sorted.sort((a, b) => {
        const x = a[order.key], y = b[order.key];
        if (typeof x === "string" || typeof y === "string") return String(x).localeCompare(String(y)) * (order.down ? 1 : -1);
        return ((y === null ? -Infinity : y) - (x === null ? -Infinity : x)) * (order.down ? 1 : -1);
      });
      const heads = columns.map((c) => el("button.link", { type: "button", "data-sort": c.key,
        text: t("packs.col." + c.key) + (order.key === c.key ? (order.down ? " ↓" : " ↑") : "") }));
      heads.forEach((h, i) => h.addEventListener("click", () => {
        order = { key: columns[i].key, down: order.key === columns[i].key ? !order.down : true }; draw();
      }));
      const body = sorted.map((row) => columns.map((c) => {
        const v = row[c.key];
        if (c.user) return { text: v, user: true, cls: best && best(row) ? "best" : "" };
        return c.show ? c.show(v) : (v === null || v === undefined ? "—" : EP.fmt(v));
      }));
      const table = EP.table(heads, body, "grid.sortable");
      sorted.forEach((row, i) => { if (best && best(row)) table.tBodies[0].rows[i].classList.add("best-row"); });
      wrap.replaceChildren(table);
    };
    draw();
    return wrap;
  }

  const ratio2 = (v) => (v === null || v === undefined ? "—" : (Math.round(v * 100) / 100).toFixed(2));
  const RENDER = {
    channel_quality(h, node) {
      const cols = [{ key: "channel", user: true }, { key: "visitors" }, { key: "leads" }, { key: "valid_leads" },
        { key: "trials_booked" }, { key: "trials_attended" }, { key: "first_orders" },
        { key: "first_order_rate", show: EP.pct }, { key: "revenue" }, { key: "spend" }, { key: "cost_per_lead" },
        { key: "cac" }, { key: "roi", show: ratio2 }];
      const notes = el("p");
      if (h.best_channel) notes.append(el("span.tag", {}, t("packs.best_channel").split("{channel}")[0], EP.u(h.best_channel)), " ");
      if (h.best_roi_channel) notes.append(el("span.tag", {}, t("packs.best_roi").split("{channel}")[0], EP.u(h.best_roi_channel)));
      const campaignCols = [{ key: "channel", user: true }, { key: "campaign", user: true }, { key: "leads" },
        { key: "valid_leads" }, { key: "trials_booked" }, { key: "trials_attended" }, { key: "first_orders" }, { key: "revenue" }];
      node.replaceChildren(el("h2", { text: t("packs.channels") }), notes, el("p.muted", { text: t("packs.sort_hint") }),
        el("div", { id: "channel-table" }, sortable(cols, h.channels, (r) => r.channel === h.best_channel)),
        el("h2", { text: t("packs.campaigns") }), el("div", { id: "campaign-table" }, sortable(campaignCols, h.campaigns)));
    },
  };

  P.scenario = async function (data) {
    const pack = data.pack;
    const load = async () => {
      const params = new URLSearchParams();
      const range = $("pack-range").value;
      if (range === "all") params.set("date_range", "all");
      if (range === "custom") {
        if ($("pack-from").value) params.set("date_from", $("pack-from").value);
        if ($("pack-to").value) params.set("date_to", $("pack-to").value);
      }
      if ($("pack-roi-days")) params.set("roi_days", $("pack-roi-days").value);
      $("pack-body").replaceChildren(el("p.muted", { text: t("packs.loading") }));
      try {
        const h = await EP.api("GET", "/api/v1/packs/" + pack.name + "/headline?" + params.toString());
        $("pack-dates").replaceChildren(el("span", { translate: "no", text: h.date_from + " – " + h.date_to }));
        $("pack-empty").hidden = !h.empty;
        if (h.empty) {
          $("pack-empty").replaceChildren(fill(t("packs.empty"), { events: h.missing_events.map(EP.eventLabel).join(", ") }), " ",
            el("a", { href: "/catalog", text: t("packs.tracking_plan") }));
        }
        const body = el("div");
        body.append(el("div.stats", {}, el("div.stat", {}, el("div.stat-value", { id: "pack-card", text: number(h.card.value, h.card.unit) }),
          el("div.stat-label", { text: t(h.card.label) }))));
        const more = el("div");
        if (RENDER[pack.name]) RENDER[pack.name](h, more);
        body.append(more);
        $("pack-body").replaceChildren(body);
        document.body.dataset.headline = String(Number(document.body.dataset.headline || 0) + 1);
      } catch (err) { $("pack-body").replaceChildren(); EP.showError($("pack-error"), err.message); }
    };
    for (const li of document.querySelectorAll("#pack-needs li")) {
      li.prepend(el("span", { text: EP.eventLabel(li.dataset.event) + " " }));
    }
    $("pack-period").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    const act = async (method, url, message) => {
      try {
        const done = await EP.api(method, url);
        EP.toast(fill(t(message), { created: done.created.length, updated: done.updated.length, kept: done.kept.length,
          removed: done.removed.length }));
        setTimeout(() => location.reload(), 600);
      } catch (err) { EP.showError($("pack-error"), err.message); }
    };
    if ($("pack-install")) $("pack-install").addEventListener("click", () => act("POST", "/api/v1/packs/" + pack.name + "/install", "packs.done"));
    if ($("pack-uninstall")) $("pack-uninstall").addEventListener("click", () => {
      if (confirm(t("packs.confirm_uninstall"))) act("DELETE", "/api/v1/packs/" + pack.name, "packs.removed");
    });
    await EP.catalogue();
    await load();
  };
})();
