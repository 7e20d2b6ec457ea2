/* The provider's phone (/provider): offers arriving live with a countdown, accept or decline in
 * one tap; today's jobs in time order with the map, the call button and what the job needs;
 * on the way, check-in and check-out with the phone's position and clock; an outcome for a visit
 * that could not happen; a canteen's meal counts and a day-care center's attendance.
 *
 * Live: every websocket frame in this provider's scope (they carry ids only) re-reads
 * /api/field/offers and /api/field/today; cards whose content did not change are kept as they
 * are, so a summary being typed is never lost. Withdrawn offers send no frame to this provider,
 * so pending offers are also re-read every 15 s. */
"use strict";

window.__providerBootedAt = Date.now(); // a test checks the page is never reloaded
window.__providerSeqs = [];

const ProviderPage = (() => {
  const $ = (id) => document.getElementById(id);
  const el = EC.el;
  const seenPending = new Set();
  const dismissed = new Set();
  const drafts = new Map(); // request id -> summary being typed
  const cards = new Map(); // key -> { sig, node }
  let lastOffers = [];
  let lastDay = null;
  let running = null;
  let again = false;
  let timer = null;
  let outcomeFor = null;

  function message(exc) {
    if (Array.isArray(exc.detail)) return exc.detail.map((d) => d.msg).join("; ");
    return exc.message || EC.t("error.generic");
  }

  function position() {
    return new Promise((resolve, reject) => {
      if (!navigator.geolocation) { reject(new Error(EC.t("field.geo.none"))); return; }
      navigator.geolocation.getCurrentPosition(
        (p) => resolve({ lat: Number(p.coords.latitude.toFixed(6)), lon: Number(p.coords.longitude.toFixed(6)) }),
        (err) => reject(new Error(EC.t(err.code === 1 ? "field.geo.denied" : "field.geo.failed"))),
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
    });
  }

  /** Run one button's work once at a time; a 409 means someone else moved first: re-read. */
  async function act(button, work, doneKey) {
    if (button.disabled) return;
    button.disabled = true;
    try {
      const id = await work();
      if (doneKey) EC.toast(EC.t(doneKey, { id }), "ok");
    } catch (exc) {
      EC.toast(message(exc), "error");
    } finally {
      button.disabled = false;
      await refresh().catch(() => {});
    }
  }

  // ---- reading -------------------------------------------------------------------------------
  function refresh() {
    if (running) { again = true; return running; }
    running = (async () => {
      do {
        again = false;
        const [offers, day] = await Promise.all([EC.api("GET", "/api/field/offers"), EC.api("GET", "/api/field/today")]);
        renderOffers(offers);
        renderDay(day);
      } while (again);
    })().finally(() => { running = null; });
    return running;
  }

  function soon() { clearTimeout(timer); timer = setTimeout(() => refresh().catch(() => {}), 150); }

  /** Replace the children of `list` by `items`, reusing each card whose content is unchanged. */
  function keyed(list, items, key, sig, build) {
    const nodes = items.map((item) => {
      const k = key(item);
      const s = sig(item) + EC.lang;
      const known = cards.get(k);
      if (known && known.sig === s) return known.node;
      const node = build(item);
      cards.set(k, { sig: s, node });
      return node;
    });
    const active = document.activeElement;
    list.replaceChildren(...nodes);
    if (active && list.contains(active) && document.activeElement !== active) active.focus();
  }

  // ---- offers --------------------------------------------------------------------------------
  function remaining(iso) {
    const s = Math.floor((new Date(iso).getTime() - Date.now()) / 1000);
    if (s <= 0) return null;
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function window_(item) { return `${EC.fmtTime(item.window_start, true)}–${EC.fmtTime(item.window_end)}`; }

  function offerCard(o) {
    const accept = el("button", { type: "button", class: "ok big wide", dataset: { accept: o.id } }, EC.t("field.accept"));
    accept.addEventListener("click", () => act(accept, async () => {
      await EC.api("POST", `/api/offers/${o.id}/accept`);
      showTab("jobs");
      return o.request_id;
    }, "field.accepted"));
    const reasons = ["staff", "far", "time"].map((r) => {
      const b = el("button", { type: "button", class: "secondary", dataset: { decline: r } }, EC.t(`field.reason.${r}`));
      b.addEventListener("click", () => act(b, async () => {
        await EC.api("POST", `/api/offers/${o.id}/decline`, { reason: EC.t(`field.reason.${r}`) });
        return o.request_id;
      }, "field.declined"));
      return b;
    });
    const left = remaining(o.expires_at);
    return el("article", { class: "card offer", dataset: { offer: o.id, request: o.request_id } },
      el("h3", {}, el("span", {}, `${EC.t(`kind.${o.kind}`)} #${o.request_id}`),
        el("span", { class: `countdown${left ? "" : " late"}`, dataset: { expires: o.expires_at } },
          left ? EC.t("field.left", { t: left }) : EC.t("field.late"))),
      el("p", {}, window_(o)),
      el("p", {}, el("strong", {}, o.elder.name), ` · ${o.elder.township}`),
      el("p", { class: "addr" }, o.elder.address),
      o.distance_km !== null ? el("p", { class: "facts" }, `${o.distance_km.toFixed(1)} km`) : null,
      el("div", { class: "actions" }, accept),
      el("div", { class: "reasons" }, el("span", { class: "muted" }, EC.t("field.decline")), ...reasons));
  }

  function endedNote(o) {
    const kind = EC.t(`kind.${o.kind}`);
    const why = EC.t(`why.${o.reason}`) === `why.${o.reason}` ? EC.t("why.other") : EC.t(`why.${o.reason}`);
    const text = o.status === "expired"
      ? EC.t("field.ended.expired", { id: o.request_id, kind })
      : EC.t("field.ended.withdrawn", { id: o.request_id, kind, why });
    const ok = el("button", { type: "button", class: "secondary" }, EC.t("field.dismiss"));
    const node = el("div", { class: "note", role: "status", dataset: { ended: o.id, status: o.status } }, el("span", {}, text), ok);
    ok.addEventListener("click", () => { dismissed.add(o.id); node.remove(); });
    return node;
  }

  function renderOffers(offers) {
    lastOffers = offers;
    const pending = offers.filter((o) => o.status === "pending");
    for (const o of pending) {
      if (!seenPending.has(o.id) && window.__providerBooted) EC.toast(EC.t("field.new_offer", { id: o.request_id }), "info");
      seenPending.add(o.id);
    }
    const gone = offers.filter((o) => (o.status === "expired" || o.status === "withdrawn") && seenPending.has(o.id) && !dismissed.has(o.id));
    $("offer-notes").replaceChildren(...gone.map(endedNote));
    const list = $("offer-list");
    if (!pending.length) { list.replaceChildren(el("p", { class: "empty" }, EC.t("field.no_offers"))); }
    else keyed(list, pending, (o) => `offer-${o.id}`, (o) => JSON.stringify(o), offerCard);
    $("offers-count").textContent = String(pending.length);
    $("offers-count").dataset.n = String(pending.length);
  }

  function tick() {
    document.querySelectorAll(".offer .countdown[data-expires]").forEach((n) => {
      const left = remaining(n.dataset.expires);
      n.textContent = left ? EC.t("field.left", { t: left }) : EC.t("field.late");
      if (!left && !n.classList.contains("late")) { n.classList.add("late"); soon(); }
    });
  }

  // ---- the day -------------------------------------------------------------------------------
  function tiles(title, pairs) {
    return el("div", { class: "summary-box" }, el("h3", {}, title),
      ...pairs.map(([key, n, name]) => el("div", { class: "tile", dataset: { tile: name } }, el("strong", {}, String(n)), EC.t(key))));
  }

  function renderSummary(day) {
    const parts = [];
    for (const m of day.meals) {
      parts.push(tiles(EC.t("field.meals", { slot: EC.t(`field.slot.${m.slot}`) }), [
        ["field.meals.dine_in", m.dine_in, `${m.slot}-dine_in`], ["field.meals.delivery", m.delivery, `${m.slot}-delivery`],
        ["field.meals.done", m.done, `${m.slot}-done`], ["field.meals.cancelled", m.cancelled, `${m.slot}-cancelled`]]));
    }
    if (day.provider.kind === "day_care") {
      const a = day.attendance;
      parts.push(tiles(EC.t("field.attendance"), [["field.att.expected", a.expected, "expected"],
        ["field.att.arrived", a.arrived, "arrived"], ["field.att.left", a.left, "left"], ["field.att.absent", a.absent, "absent"]]));
    }
    $("day-summary").replaceChildren(...parts);
  }

  function labels(job) {
    if (job.kind === "day_care") return { start: "field.arrive", end: "field.leave", cannot: "field.absent" };
    if (job.kind === "meal") return { start: job.care.delivery ? "field.delivered" : "field.eaten", end: null, cannot: "field.cannot" };
    return { start: "field.check_in", end: "field.check_out", cannot: "field.cannot" };
  }

  async function checkIn(job) {
    const at = await position();
    await EC.api("POST", `/api/requests/${job.request_id}/check-in`, { ...at, device_at: new Date().toISOString() });
    if (job.kind === "meal") { // a meal handed over (or served) is one tap: in and out at once
      await EC.api("POST", `/api/requests/${job.request_id}/check-out`, { ...at, device_at: new Date().toISOString() });
    }
    return job.request_id;
  }

  async function checkOut(job) {
    const at = await position();
    const summary = (drafts.get(job.request_id) || "").trim();
    await EC.api("POST", `/api/requests/${job.request_id}/check-out`, { ...at, summary, device_at: new Date().toISOString() });
    drafts.delete(job.request_id);
    return job.request_id;
  }

  function callButton(job) {
    const b = el("button", { type: "button", class: "secondary big", dataset: { call: job.request_id } }, `${EC.t("field.call")} ${job.elder.phone}`);
    b.addEventListener("click", () => act(b, async () => {
      const read = await EC.api("POST", `/api/field/jobs/${job.request_id}/phone`);
      const link = el("a", { class: "big", href: `tel:${read.phone}`, dataset: { tel: job.request_id } }, EC.t("field.call_now", { phone: read.phone }));
      b.replaceWith(link);
      link.focus();
    }));
    return b;
  }

  function jobActions(job) {
    const l = labels(job);
    const out = [];
    const button = (key, cls, work, done) => {
      const b = el("button", { type: "button", class: `big ${cls}`, dataset: { action: key } }, EC.t(key));
      b.addEventListener("click", () => act(b, work, done));
      return b;
    };
    if (job.status === "assigned") {
      if (job.place === "elder_home" && !job.departed_at && job.kind !== "meal") {
        out.push(button("field.on_the_way", "secondary wide", async () => {
          await EC.api("POST", `/api/requests/${job.request_id}/on-the-way`, {});
        }));
      }
      out.push(button(l.start, "ok", () => checkIn(job), job.kind === "meal" ? "field.checked_out" : "field.checked_in"));
      out.push(cannotButton(job, l.cannot));
    } else if (job.status === "in_service") {
      const area = el("textarea", { rows: 2, maxlength: 1000, dataset: { summary: job.request_id }, "aria-label": EC.t("field.summary"), placeholder: EC.t("field.summary") });
      area.value = drafts.get(job.request_id) || "";
      area.addEventListener("input", () => drafts.set(job.request_id, area.value));
      out.push(el("div", { class: "wide" }, area));
      if (l.end) out.push(button(l.end, "ok", () => checkOut(job), "field.checked_out"));
      out.push(cannotButton(job, l.cannot));
    }
    return out.length ? el("div", { class: "actions" }, ...out) : null;
  }

  function cannotButton(job, key) {
    const b = el("button", { type: "button", class: "big danger", dataset: { action: "cannot" } }, EC.t(key));
    b.addEventListener("click", () => {
      outcomeFor = job;
      $("outcome-note").value = drafts.get(job.request_id) || "";
      $("outcome-dialog").showModal();
    });
    return b;
  }

  function result(job) {
    const v = job.visit;
    const lines = [];
    if (job.status === "in_service" && v) lines.push(el("p", { class: "facts" }, EC.t("field.in_since", { t: EC.fmtTime(v.check_in_at) })));
    if (job.status === "completed" && v) lines.push(el("p", { class: "done" }, EC.t("field.done_at", { t: EC.fmtTime(v.check_out_at) })));
    if (job.status === "cancelled") {
      lines.push(v && v.outcome !== "completed"
        ? el("p", { class: "failed" }, EC.t("field.not_served", { why: EC.t(`outcome.${v.outcome}`) }))
        : el("p", { class: "failed" }, EC.t("field.cancelled")));
    }
    if (v && v.flags.length && v.review === "open") {
      lines.push(el("p", { class: "flags" }, EC.t("field.flags", { flags: v.flags.map((f) => EC.t(`flag.${f}`)).join("、") })));
    }
    return lines;
  }

  function jobCard(job) {
    const e = job.elder;
    const care = job.care;
    const facts = [EC.t("field.care", { level: EC.t(`care.${care.care_level}`) })];
    if (care.slot) facts.push(EC.t(`field.slot.${care.slot}`));
    if (job.kind === "meal") facts.push(EC.t(care.delivery ? "field.delivery" : "field.dine_in"));
    if (care.skills.length) facts.push(care.skills.map((s) => EC.t(`skill.${s}`)).join("、"));
    const map = e.lat !== null && e.lon !== null
      ? el("a", { class: "map", target: "_blank", rel: "noopener noreferrer",
        href: `https://uri.amap.com/marker?position=${e.lon},${e.lat}&coordinate=wgs84&callnative=1` }, EC.t("field.map"))
      : null;
    return el("article", { class: "card job", dataset: { request: job.request_id, status: job.status } },
      el("h3", {}, el("span", {}, `${window_(job)} ${EC.t(`kind.${job.kind}`)}`),
        el("span", { class: `badge ${job.status}`, dataset: { status: job.status } }, EC.t(`status.${job.status}`))),
      el("p", {}, el("strong", {}, e.name), ` · ${e.township}`, job.caregiver_name ? ` · ${job.caregiver_name}` : ""),
      e.address ? el("p", { class: "addr" }, job.place === "provider_site" ? `${EC.t("field.place.site")} · ` : "", e.address, " ", map) : null,
      job.phone_revealable ? el("p", {}, callButton(job)) : null,
      el("p", { class: "facts" }, facts.join(" · ")),
      care.note ? el("p", { class: "notes" }, EC.t("field.note", { text: care.note })) : null,
      job.departed_at && job.status === "assigned" ? el("p", { class: "facts", dataset: { departed: "1" } }, EC.t("field.departed", { t: EC.fmtTime(job.departed_at) })) : null,
      ...result(job),
      jobActions(job));
  }

  function renderDay(day) {
    lastDay = day;
    const who = [day.provider.name, EC.t(`kindp.${day.provider.kind}`), day.caregiver ? day.caregiver.name : null].filter(Boolean);
    $("field-who").textContent = who.join(" · ");
    renderSummary(day);
    const list = $("job-list");
    if (!day.jobs.length) list.replaceChildren(el("p", { class: "empty" }, EC.t("field.no_jobs")));
    else keyed(list, day.jobs, (j) => `job-${j.request_id}`, (j) => JSON.stringify(j), jobCard);
    const open = day.jobs.filter((j) => j.status === "assigned" || j.status === "in_service").length;
    $("jobs-count").textContent = String(open);
    $("jobs-count").dataset.n = String(open);
  }

  // ---- the outcome dialog, tabs, start ---------------------------------------------------------
  async function submitOutcome(event) {
    if (event.submitter && event.submitter.value !== "ok") return;
    event.preventDefault();
    const job = outcomeFor;
    const outcome = new FormData($("outcome-form")).get("outcome");
    const button = $("outcome-submit");
    await act(button, async () => {
      const at = await position();
      await EC.api("POST", `/api/requests/${job.request_id}/check-out`, {
        ...at, outcome, summary: $("outcome-note").value.trim(), device_at: new Date().toISOString() });
      drafts.delete(job.request_id);
      $("outcome-dialog").close();
      return job.request_id;
    }, "field.reported");
  }

  function showTab(name) {
    for (const tab of ["offers", "jobs"]) {
      $(`${tab}-panel`).hidden = tab !== name;
      $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    }
  }

  async function boot() {
    if (!EC.requireRole("provider")) return;
    EC.header("provider.title");
    const banner = EC.liveBanner();
    $("tab-offers").addEventListener("click", () => showTab("offers"));
    $("tab-jobs").addEventListener("click", () => showTab("jobs"));
    $("outcome-form").addEventListener("submit", submitOutcome);
    document.addEventListener("ec:lang", () => { if (lastDay) { renderOffers(lastOffers); renderDay(lastDay); } });
    const day = await EC.api("GET", "/api/field/today");
    renderDay(day);
    renderOffers(await EC.api("GET", "/api/field/offers"));
    window.__providerBooted = true;
    ProviderPage.stream = EC.live({
      since: day.since,
      onEvent: (frame) => { window.__providerSeqs.push(frame.seq); soon(); },
      onStatus: (state) => { banner(state); document.body.dataset.live = state; if (state === "up") soon(); },
    });
    setInterval(tick, 1000);
    setInterval(() => { if (lastOffers.some((o) => o.status === "pending")) soon(); }, 15000);
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", () => { boot().catch((exc) => EC.toast(message(exc), "error")); });
  return { refresh, showTab, stream: null };
})();
