/* The family page (/family): each linked elder's requests with a plain timeline (requested ->
 * offered -> accepted by whom -> on the way -> arrived -> finished), live over the websocket
 * without reload; the visit summary where the elder consented (the server decides); asking for a
 * service; rating a finished one. Frames carry ids only: each one re-reads that request from
 * /api/family/requests/{id}, and the answer with the newest seq wins, whatever order they land.
 * The caregiver's "on the way" is no event: assigned requests are re-read every 15 s for it. */
"use strict";

window.__familyBootedAt = Date.now(); // a test checks the page is never reloaded
window.__familySeqs = [];

EC.addStrings({
  zh: {
    "family.title": "家属服务",
    "family.none": "您的账号尚未关联老人，请联系调度中心（022-68000000）。",
    "family.consent.status": "您可查看服务进度；服务记录需老人授权后可见。",
    "family.consent.status_and_notes": "您可查看服务进度和服务记录。",
    "family.ask": "为TA预约服务", "family.ask.kind": "服务类型", "family.ask.slot": "餐次",
    "family.ask.delivery": "送餐上门", "family.ask.note": "备注（选填）", "family.ask.submit": "提交预约",
    "family.ask.cancel": "取消", "family.ask.done": "已提交预约 #{id}",
    "family.no_requests": "暂无服务记录",
    "family.welfare": "关爱探访（调度中心跟进）",
    "step.requested": "已提交服务需求", "step.offered": "正在联系服务机构", "step.accepted": "{who} 已接单",
    "step.on_the_way": "服务人员已出发", "step.on_the_way.eta": "服务人员已出发，约{n}分钟到达",
    "step.arrived": "服务人员已到达，开始服务", "step.finished": "服务已完成",
    "step.arrived.day_care": "老人已到日间照料中心", "step.finished.day_care": "老人已离开中心",
    "step.not_served": "未能服务（{why}），调度中心将跟进", "step.cancelled": "已取消",
    "step.escalated": "调度中心正在人工安排",
    "outcome.not_home": "老人不在家", "outcome.refused": "老人拒绝服务", "outcome.in_hospital": "老人住院",
    "family.summary": "服务记录：{text}", "family.withheld": "服务记录仅对获老人授权的家属可见。",
    "family.rate": "为本次服务评分", "family.rate.comment": "评价（选填）", "family.rate.submit": "提交评价",
    "family.rated": "您的评价：", "family.rate.done": "感谢您的评价", "family.rate.pick": "请先选择星级",
    "family.caregiver": "服务人员：{name}",
    "slot.lunch": "午餐", "slot.dinner": "晚餐",
  },
  en: {
    "family.title": "Family",
    "family.none": "No elder is linked to this account yet; please call the center (022-68000000).",
    "family.consent.status": "You can follow each service; visit notes need the elder's consent.",
    "family.consent.status_and_notes": "You can follow each service and read its visit notes.",
    "family.ask": "Ask for a service", "family.ask.kind": "Service", "family.ask.slot": "Meal",
    "family.ask.delivery": "Deliver to the door", "family.ask.note": "Note (optional)", "family.ask.submit": "Send",
    "family.ask.cancel": "Cancel", "family.ask.done": "Request #{id} sent",
    "family.no_requests": "No services yet",
    "family.welfare": "Welfare visit (the center follows up)",
    "step.requested": "Requested", "step.offered": "Finding a provider", "step.accepted": "Accepted by {who}",
    "step.on_the_way": "On the way", "step.on_the_way.eta": "On the way, about {n} minutes",
    "step.arrived": "Arrived, service started", "step.finished": "Finished",
    "step.arrived.day_care": "Arrived at the day-care center", "step.finished.day_care": "Left the center",
    "step.not_served": "Not served ({why}); the center follows up", "step.cancelled": "Cancelled",
    "step.escalated": "An operator is arranging it",
    "outcome.not_home": "not at home", "outcome.refused": "refused", "outcome.in_hospital": "in hospital",
    "family.summary": "Visit notes: {text}", "family.withheld": "Visit notes are shown only to relatives the elder consented to.",
    "family.rate": "Rate this service", "family.rate.comment": "Comment (optional)", "family.rate.submit": "Send rating",
    "family.rated": "Your rating: ", "family.rate.done": "Thank you for your rating", "family.rate.pick": "Pick the stars first",
    "family.caregiver": "Caregiver: {name}",
    "slot.lunch": "Lunch", "slot.dinner": "Dinner",
  },
});

const FamilyPage = (() => {
  const el = EC.el;
  const $ = (id) => document.getElementById(id);
  const reads = new Map(); // request id -> latest read
  const loading = new Map(); // request id -> in-flight read
  const again = new Set();
  const drafts = new Map(); // request id -> { stars, comment }
  let elders = [];

  function message(exc) {
    if (Array.isArray(exc.detail)) return exc.detail.map((d) => d.msg).join("; ");
    return exc.message || EC.t("error.generic");
  }

  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "family-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ---- a request's card --------------------------------------------------------------------
  function stepText(step, r) {
    const dc = r.kind === "day_care" && (step.step === "arrived" || step.step === "finished");
    if (dc) return EC.t(`step.${step.step}.day_care`);
    if (step.step === "accepted") return EC.t("step.accepted", { who: step.detail || "" });
    if (step.step === "on_the_way" && step.detail) return EC.t("step.on_the_way.eta", { n: step.detail });
    if (step.step === "not_served") return EC.t("step.not_served", { why: EC.t(`outcome.${step.detail}`) });
    return EC.t(`step.${step.step}`);
  }

  function title(r) {
    if (r.welfare) return EC.t("family.welfare");
    let text = EC.t(`kind.${r.kind}`);
    if (r.kind === "meal" && r.slot) text += `（${EC.t(`slot.${r.slot}`)}）`;
    return text;
  }

  function rating(r) {
    if (r.rating) return el("p", { class: "rated", dataset: { rated: r.rating } }, EC.t("family.rated"), "★".repeat(r.rating) + "☆".repeat(5 - r.rating));
    if (!r.can_rate) return null;
    const draft = drafts.get(r.id) || { stars: 0, comment: "" };
    drafts.set(r.id, draft);
    const stars = [1, 2, 3, 4, 5].map((n) => {
      const b = el("button", { type: "button", "aria-pressed": String(n <= draft.stars), "aria-label": `${n}`, dataset: { star: n } }, "★");
      b.addEventListener("click", () => {
        draft.stars = n;
        b.parentElement.querySelectorAll("button").forEach((s) => s.setAttribute("aria-pressed", String(Number(s.dataset.star) <= n)));
      });
      return b;
    });
    const comment = el("textarea", { rows: 2, maxlength: 500, placeholder: EC.t("family.rate.comment"), "aria-label": EC.t("family.rate.comment") });
    comment.value = draft.comment;
    comment.addEventListener("input", () => { draft.comment = comment.value; });
    const send = el("button", { type: "button", class: "big", dataset: { rate: r.id } }, EC.t("family.rate.submit"));
    send.addEventListener("click", async () => {
      if (!draft.stars) { EC.toast(EC.t("family.rate.pick"), "error"); return; }
      send.disabled = true;
      try {
        await EC.api("POST", `/api/requests/${r.id}/feedback`, { rating: draft.stars, comment: draft.comment.trim() });
        drafts.delete(r.id);
        EC.toast(EC.t("family.rate.done"), "ok");
        await load(r.id);
      } catch (exc) { EC.toast(message(exc), "error"); send.disabled = false; }
    });
    return el("div", { class: "rate" }, el("strong", {}, EC.t("family.rate")), el("div", { class: "stars" }, ...stars), comment, send);
  }

  function card(r) {
    const steps = r.steps.map((s) => el("li", {
      class: s.step === "finished" ? "good" : (s.step === "not_served" || s.step === "cancelled" || s.step === "escalated") ? "bad" : "",
      dataset: { step: s.step },
    }, el("time", { datetime: s.at }, EC.fmtTime(s.at, true)), stepText(s, r)));
    return el("article", { class: `req${r.welfare ? " welfare" : ""}`, dataset: { request: r.id, status: r.status } },
      el("h3", {}, el("span", {}, title(r)), el("span", { class: `badge ${r.status}`, dataset: { status: r.status } }, EC.t(`status.${r.status}`))),
      el("p", { class: "when" }, `${EC.fmtTime(r.window_start, true)}–${EC.fmtTime(r.window_end)}`,
        r.caregiver_name ? ` · ${EC.t("family.caregiver", { name: r.caregiver_name })}` : ""),
      el("ol", { class: "steps" }, ...steps),
      r.summary ? el("p", { class: "summary", dataset: { summary: r.id } }, EC.t("family.summary", { text: r.summary })) : null,
      r.summary_withheld ? el("p", { class: "withheld" }, EC.t("family.withheld")) : null,
      rating(r));
  }

  function place(r) {
    const list = document.querySelector(`.elder[data-elder="${r.elder_id}"] .requests`);
    if (!list) return;
    const node = card(r);
    const old = list.querySelector(`.req[data-request="${r.id}"]`);
    const active = document.activeElement;
    const keepFocus = old && old.contains(active);
    if (old) old.replaceWith(node);
    else {
      const later = [...list.querySelectorAll(".req")].find((n) => Number(n.dataset.request) < r.id);
      list.insertBefore(node, later || null); // newest first
    }
    list.querySelector(".empty")?.remove();
    if (keepFocus && active.dataset.star) node.querySelector(`[data-star="${active.dataset.star}"]`)?.focus();
  }

  function upsert(r) {
    const known = reads.get(r.id);
    if (known && known.last_seq > r.last_seq) return; // an older answer arriving late
    reads.set(r.id, r);
    place(r);
  }

  /** Read one request again (coalescing bursts of frames for it). */
  async function load(id) {
    if (loading.has(id)) { again.add(id); return loading.get(id); }
    const run = (async () => {
      do {
        again.delete(id);
        try { upsert(await EC.api("GET", `/api/family/requests/${id}`)); } catch (exc) { if (exc.status !== 404) throw exc; }
      } while (again.has(id));
    })().finally(() => loading.delete(id));
    loading.set(id, run);
    return run;
  }

  // ---- an elder's section and the ask form ---------------------------------------------------
  function askForm(elder, section) {
    const form = el("form", { class: "ask", hidden: true, dataset: { ask: elder.id } });
    const kind = el("select", { name: "kind", "aria-label": EC.t("family.ask.kind") },
      ...["meal", "home_care", "day_care"].map((k) => el("option", { value: k }, EC.t(`kind.${k}`))));
    const slot = el("select", { name: "slot", "aria-label": EC.t("family.ask.slot") },
      ...["lunch", "dinner"].map((s) => el("option", { value: s }, EC.t(`slot.${s}`))));
    const delivery = el("input", { type: "checkbox", id: `delivery-${elder.id}`, name: "delivery" });
    const mealRow = el("div", { class: "row" }, slot,
      el("div", { class: "check" }, delivery, el("label", { for: `delivery-${elder.id}` }, EC.t("family.ask.delivery"))));
    const note = el("textarea", { name: "note", rows: 2, maxlength: 500, placeholder: EC.t("family.ask.note"), "aria-label": EC.t("family.ask.note") });
    const cancel = el("button", { type: "button", class: "secondary big" }, EC.t("family.ask.cancel"));
    const submit = el("button", { type: "submit", class: "big" }, EC.t("family.ask.submit"));
    let key = null;
    kind.addEventListener("change", () => { mealRow.hidden = kind.value !== "meal"; key = null; });
    cancel.addEventListener("click", () => { form.hidden = true; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { elder_id: elder.id, kind: kind.value, channel: "app", note: note.value.trim() };
      if (kind.value === "meal") body.details = { slot: slot.value, delivery: delivery.checked };
      key = key || newKey(); // a retried submit of the form files one request
      submit.disabled = true;
      try {
        const created = await EC.api("POST", "/api/requests", body, { headers: { "Idempotency-Key": key } });
        key = null;
        form.hidden = true;
        note.value = "";
        EC.toast(EC.t("family.ask.done", { id: created.id }), "ok");
        await load(created.id);
      } catch (exc) { EC.toast(message(exc), "error"); } finally { submit.disabled = false; }
    });
    form.append(kind, mealRow, note, el("div", { class: "row" }, cancel, submit));
    const open = el("button", { type: "button", class: "big", dataset: { askOpen: elder.id } }, EC.t("family.ask"));
    open.addEventListener("click", () => { form.hidden = false; kind.focus(); });
    section.querySelector("header").append(open);
    return form;
  }

  function elderSection(elder) {
    const section = el("section", { class: "elder", dataset: { elder: elder.id } },
      el("header", {}, el("h2", {}, `${elder.name} · ${elder.township}`),
        el("p", { class: "consent", dataset: { consent: elder.consent } }, EC.t(`family.consent.${elder.consent}`))),
      el("div", { class: "requests" }, el("p", { class: "empty" }, EC.t("family.no_requests"))));
    section.insertBefore(askForm(elder, section), section.querySelector(".requests"));
    return section;
  }

  function renderAll() {
    const main = $("family");
    main.replaceChildren(...(elders.length ? elders.map(elderSection) : [el("p", { class: "empty" }, EC.t("family.none"))]));
    for (const r of [...reads.values()].sort((a, b) => b.id - a.id)) place(r);
  }

  async function boot() {
    if (!EC.requireRole("family")) return;
    EC.header("family.title");
    const banner = EC.liveBanner();
    const overview = await EC.api("GET", "/api/family/overview");
    elders = overview.elders;
    for (const r of overview.requests) reads.set(r.id, r);
    renderAll();
    document.addEventListener("ec:lang", renderAll);
    FamilyPage.stream = EC.live({
      since: overview.since,
      onEvent: (frame) => { window.__familySeqs.push(frame.seq); if (frame.request_id) load(frame.request_id).catch(() => {}); },
      onStatus: (state) => { banner(state); document.body.dataset.live = state; },
    });
    // "On the way" is not a status (API.md's are fixed), so it sends no frame: re-read the
    // assigned requests now and then to show it (the family is also texted at once).
    setInterval(() => {
      if (document.visibilityState !== "visible") return;
      for (const r of reads.values()) if (r.status === "assigned") load(r.id).catch(() => {});
    }, 15000);
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", () => { boot().catch((exc) => EC.toast(message(exc), "error")); });
  return { load, stream: null };
})();
