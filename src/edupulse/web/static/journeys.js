/* Journey pages: the list with live counters and the editor (steps drawn as a vertical flow, the trigger's
   reach now), one journey (status, per-step counts, funnel, holdout result, delivery log), the task inbox. */
"use strict";
(function () {
  const P = EP.pages, el = EP.el, t = EP.t;
  const $ = (id) => document.getElementById(id);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : values[k]));
  // words by status, action and unit (each key written out, so the catalogue test sees it)
  const STATUS = () => ({ draft: t("journeys.status.draft"), running: t("journeys.status.running"),
    paused: t("journeys.status.paused"), finished: t("journeys.status.finished") });
  const DELIVERY = () => ({ pending: t("journeys.delivery.pending"), sending: t("journeys.delivery.sending"),
    sent: t("journeys.delivery.sent"), failed: t("journeys.delivery.failed"), dead: t("journeys.delivery.dead"),
    skipped: t("journeys.delivery.skipped"), held: t("journeys.delivery.held") });
  const ACTION = () => ({ webhook: t("journeys.action.webhook"), email: t("journeys.action.email"),
    dingtalk: t("journeys.action.dingtalk"), wecom: t("journeys.action.wecom"), task: t("journeys.action.task"),
    set_property: t("journeys.action.set_property"), set_tag: t("journeys.action.set_tag") });
  const UNIT = () => ({ minute: t("journeys.unit.minute"), hour: t("journeys.unit.hour"), day: t("journeys.unit.day"),
    week: t("journeys.unit.week") });
  const EVERY = () => ({ once: t("journeys.every.once"), day: t("journeys.every.day"), week: t("journeys.every.week") });
  const TASK = () => ({ open: t("tasks.status.open"), done: t("tasks.status.done"), no_answer: t("tasks.status.no_answer") });
  const when = (iso) => (iso || "").replace("T", " ").slice(0, 16);
  const duration = (d) => (d ? d.value + " " + UNIT()[d.unit] : "");
  const EXAMPLE = {
    name: "Trial booked, not attended", holdout: 0.1,
    trigger: { event: "trial_booked", not_followed_by: { event: "trial_attended", within: { value: 24, unit: "hour" } } },
    goal: { event: "order_paid", within: { value: 7, unit: "day" } },
    steps: [
      { action: "task", title: { zh: "回访 {{person.login_id}}", en: "Call {{person.login_id}}" }, assign: "round_robin" },
      { wait: { value: 1, unit: "day" } },
      { if: { property: "person.grade", op: "gte", value: 3 },
        then: [{ action: "set_property", property: "recall_status", value: "called" }], else: [{ exit: "done" }] },
    ],
  };

  function triggerWords(tr) {
    if (!tr) return "";
    if (tr.schedule) return fill(t("journeys.trigger.schedule"), { every: EVERY()[tr.schedule.every], at: tr.schedule.at })
      + " · " + (tr.audience.segment !== undefined ? t("journeys.trigger.segment") + " " + EP.userText(tr.audience.segment)
        : t("journeys.trigger.tag") + " " + EP.userText(tr.audience.tag));
    if (tr.event) return t("journeys.trigger.event") + " " + EP.eventLabel(tr.event) + (tr.not_followed_by
      ? " · " + fill(t("journeys.trigger.not_followed"), { event: EP.eventLabel(tr.not_followed_by.event), within: duration(tr.not_followed_by.within) }) : "");
    if (tr.segment_entered !== undefined) return t("journeys.trigger.segment_entered") + " " + EP.userText(tr.segment_entered);
    if (tr.segment_left !== undefined) return t("journeys.trigger.segment_left") + " " + EP.userText(tr.segment_left);
    const tag = tr.tag_entered || tr.tag_left;
    return (tr.tag_entered ? t("journeys.trigger.tag_entered") : t("journeys.trigger.tag_left")) + " " + EP.userText(tag ? tag.tag : "");
  }

  function stepWords(step) {
    if (step.wait) {
      const w = step.wait;
      if (w.event) return t("journeys.step.wait_event") + " " + EP.eventLabel(w.event) + " · " + t("journeys.step.at_most") + " " + duration(w.max);
      if (w.until) return t("journeys.step.wait_until") + " " + w.until;
      return t("journeys.step.wait") + " " + duration(w);
    }
    if (step.if !== undefined) return t("journeys.step.if");
    if (step.split) return t("journeys.step.split");
    if (step.exit !== undefined) return t("journeys.step.exit");
    return ACTION()[step.action] || EP.userText(step.action);
  }

  /* The steps as a vertical flow: each step a line, branches indented under it, with counts when known. */
  function flow(steps, counts, prefix) {
    return (steps || []).map((step, i) => {
      const path = prefix + i;
      const n = counts && counts[path];
      const line = el("li", { "data-step": path }, el("span.step-path", { translate: "no", text: EP.userText(path) }), " ", stepWords(step),
        n ? el("small.muted", { text: " · " + Object.entries(n).map(([s, c]) => DELIVERY()[s] + " " + EP.fmt(c)).join(", ") }) : "");
      const branches = step.if !== undefined ? [["then", t("journeys.step.then"), step.then], ["else", t("journeys.step.else"), step.else]]
        : step.split ? step.split.map((b, j) => [String(j), EP.pct(b.weight), b.steps]) : [];
      for (const [label, words, inner] of branches)
        line.append(el("div.branch", {}, el("em", { text: words }), el("ol.journey-flow", {}, ...flow(inner || [], counts, path + "." + label + "."))));
      return line;
    });
  }

  P.journeys = async function () {
    const box = $("journey-editor");
    if (box) {
      const editor = await EP.journeyEditor(box, EXAMPLE, { errorBox: $("journey-create-error") });
      $("journey-create").addEventListener("click", async () => {
        try {
          const made = await EP.api("POST", "/api/v1/journeys", editor.definition());
          EP.toast(t("journeys.created"));
          location.href = "/journeys/" + made.id;
        } catch (err) { editor.problems(err.message); }
      });
    }
    try {
      const data = await EP.api("GET", "/api/v1/journeys");
      $("journeys-list").replaceChildren(data.journeys.length ? EP.table(
        [t("journeys.name"), t("journeys.trigger"), t("journeys.status"), t("journeys.entered"), t("journeys.sent"),
          t("journeys.converted"), t("journeys.version")],
        data.journeys.map((j) => [el("a", { href: "/journeys/" + j.id, translate: "no", text: EP.userText(j.name) }),
          triggerWords(j.trigger), STATUS()[j.status], EP.fmt(j.counts.entered), EP.fmt(j.counts.sent),
          EP.fmt(j.counts.converted), j.version])) : el("div.empty", { text: t("journeys.none") }));
    } catch (err) { EP.showError($("journeys-error"), err.message); }
  };

  const number = (v) => (v === null || v === undefined ? "—" : EP.pct(v));

  P.journey = async function (data) {
    const base = "/api/v1/journeys/" + data.id;
    const reload = () => P.journey(data);
    const canReplay = (EP.boot.permissions || []).includes("channels:manage");
    try {
      const [j, results, log] = await Promise.all([EP.api("GET", base), EP.api("GET", base + "/results"),
        EP.api("GET", base + "/deliveries?limit=200")]);
      $("journey-title").replaceChildren(EP.u(j.name));
      const act = (change, words) => el("button" + (change === "start" ? ".primary" : ""), { type: "button", text: words,
        onclick: async () => { try { await EP.api("POST", base + "/" + change); reload(); } catch (err) { EP.toast(err.message, true); } } });
      const buttons = j.status === "running" ? [act("pause", t("journeys.pause")), act("finish", t("journeys.finish"))]
        : j.status === "finished" ? [] : [act("start", t("journeys.start")), act("finish", t("journeys.finish"))];
      $("journey-summary").replaceChildren(
        el("p", {}, el("strong", { text: t("journeys.status") + ": " }), STATUS()[j.status], " · ", t("journeys.version") + " " + j.version),
        el("p", {}, el("strong", { text: t("journeys.trigger") + ": " }), triggerWords(j.trigger)),
        el("p", {}, el("strong", { text: t("journeys.holdout") + ": " }), EP.pct(j.holdout),
          j.goal ? " · " + t("journeys.goal") + " " + EP.eventLabel(j.goal.event) + " · " + duration(j.goal.within) : ""),
        el("div.actions", {}, ...buttons));
      const arms = results.arms, up = results.uplift;
      const rate = (x, n) => (n ? EP.pct(x / n) : "—");
      $("journey-result").replaceChildren(EP.table([t("journeys.arm"), t("journeys.entered"), t("journeys.converted"), t("journeys.rate")], [
        [t("journeys.arm.treatment"), EP.fmt(arms.treatment.entered), EP.fmt(arms.treatment.converted), rate(arms.treatment.converted, arms.treatment.entered)],
        [t("journeys.arm.holdout"), EP.fmt(arms.holdout.entered), EP.fmt(arms.holdout.converted), rate(arms.holdout.converted, arms.holdout.entered)]]),
      el("p", { "data-testid": "uplift" }, up.error ? t("journeys.uplift_none") : fill(t("journeys.uplift"), {
        diff: number(up.absolute), lo: number(up.ci ? up.ci[0] : null), hi: number(up.ci ? up.ci[1] : null),
        p: up.p_value === null ? "—" : up.p_value < 0.001 ? "<0.001" : up.p_value.toFixed(3) })));
      const f = results.funnel;
      $("journey-funnel").replaceChildren(EP.table([t("journeys.entered"), t("journeys.sent"), t("journeys.delivered"), t("journeys.converted")],
        [[EP.fmt(f.entered), EP.fmt(f.sent), EP.fmt(f.delivered), EP.fmt(f.converted)]]));
      const counts = {};
      for (const s of results.steps) (counts[s.step] = counts[s.step] || {})[s.status] = s.count;
      $("journey-steps").replaceChildren(...flow(j.steps, counts, ""));
      const editable = (EP.boot.permissions || []).includes("journeys:edit") && j.status !== "finished";
      $("journey-edit").hidden = !editable;
      if (editable && !data.editor) {
        data.editor = await EP.journeyEditor($("journey-editor"), j, { errorBox: $("journey-save-error") });
        $("journey-save").onclick = async () => {
          try {
            await EP.api("PUT", base, data.editor.definition());
            EP.toast(t("journeys.created"));
            data.editor = null;
            reload();
          } catch (err) { data.editor.problems(err.message); }
        };
      }
      $("journey-deliveries").replaceChildren(log.deliveries.length ? EP.table(
        [t("journeys.person"), t("journeys.step"), t("journeys.action"), t("journeys.delivery"), t("journeys.reason"), t("journeys.when"), ""],
        log.deliveries.map((d) => [EP.u(d.person), EP.u(d.step), ACTION()[d.action] || EP.u(d.action), DELIVERY()[d.status],
          d.reason ? EP.u(d.reason) : "", when(d.sent_at || d.created_at), d.status === "dead" && canReplay
            ? el("button", { type: "button", text: t("journeys.replay"), onclick: async () => {
              try { await EP.api("POST", base + "/deliveries/" + d.id + "/replay"); reload(); }
              catch (err) { EP.toast(err.message, true); } } }) : ""])) : el("div.empty", { text: t("journeys.no_deliveries") }));
    } catch (err) { EP.showError($("journey-error"), err.message); }
  };

  P["journey-tasks"] = async function () {
    const load = async () => {
      try {
        const data = await EP.api("GET", "/api/v1/journey-tasks?mine=true");
        const close = (task, outcome, words) => el("button", { type: "button", text: words, onclick: async () => {
          try { await EP.api("POST", "/api/v1/journey-tasks/" + task.id + "/close", { outcome: outcome }); load(); }
          catch (err) { EP.toast(err.message, true); } } });
        $("tasks-list").replaceChildren(data.tasks.length ? EP.table(
          [t("tasks.task"), t("journeys.person"), t("tasks.status"), t("tasks.due"), ""],
          data.tasks.map((task) => [EP.u(task.title), EP.u(task.person), TASK()[task.status], when(task.due_at),
            task.status === "open" ? el("span", {}, close(task, "done", t("tasks.done")), " ", close(task, "no_answer", t("tasks.no_answer"))) : ""]))
          : el("div.empty", { text: t("tasks.none") }));
      } catch (err) { EP.showError($("tasks-error"), err.message); }
    };
    load();
  };
})();
