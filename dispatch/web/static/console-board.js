/* The console's live board, escalations, manual dispatch and SMS outbox.
 *
 * The board is fed only by the websocket (EC.live): every event moves a request on screen.
 * Events carry ids, not personal data, so a request seen for the first time is read once
 * (GET /api/requests/{id}, then its elder and provider, cached). Each request keeps the seq of
 * the last event applied, and a detail read only wins when it is at least as new: whatever the
 * order in which answers arrive, the board shows the latest state. EC.live resumes from the last
 * seq after any drop; applied seqs are recorded in window.__consoleSeqs (a test checks them). */
"use strict";

const ConsoleBoard = (() => {
  const STATUSES = ["queued", "offered", "assigned", "in_service", "completed", "escalated", "cancelled"];
  const KINDS = ["meal", "home_care", "day_care", "visit", "emergency"];
  const TERMINAL = new Set(["completed", "cancelled"]);
  const UNPLACED = new Set(["queued", "offered", "escalated"]);
  const MSG_STATUSES = ["queued", "sending", "outbox_only", "sent", "delivered", "undelivered", "failed"];

  const requests = new Map(); // id -> board entry
  const elders = new Map(); // id -> Promise<elder>
  const providers = new Map(); // id -> Promise<provider>
  let fromTime = 0; // terminal requests last changed before this are left off
  const $ = (id) => document.getElementById(id);
  window.__consoleSeqs = [];

  // ---- reading details, a few at a time ------------------------------------------------
  const queue = [];
  let running = 0;
  function later(task) { queue.push(task); pump(); }
  function pump() {
    while (running < 4 && queue.length) {
      const task = queue.shift();
      running += 1;
      task().catch(() => {}).finally(() => { running -= 1; pump(); });
    }
  }
  function cached(map, id, path) {
    if (!map.has(id)) map.set(id, EC.api("GET", path).catch((exc) => { map.delete(id); throw exc; }));
    return map.get(id);
  }

  function merge(entry, read) {
    const newest = Math.max(0, ...read.timeline.map((t) => t.seq));
    Object.assign(entry, {
      kind: read.kind, priority: read.priority, township: read.township, elder_id: read.elder_id,
      channel: read.channel, created_at: read.created_at, details: read.details, loaded: true,
    });
    if (newest >= entry.seq) {
      Object.assign(entry, {
        status: read.status, seq: newest, provider_id: read.provider_id,
        escalation_reason: read.escalation_reason, updated_at: read.updated_at,
      });
    }
  }

  async function load(entry) {
    const read = await EC.api("GET", `/api/requests/${entry.id}`);
    merge(entry, read);
    if (TERMINAL.has(entry.status) && new Date(read.updated_at).getTime() < fromTime) {
      drop(entry);
      return;
    }
    render(entry);
    const elder = await cached(elders, read.elder_id, `/api/elders/${read.elder_id}`);
    entry.elder = elder;
    render(entry);
    await provider(entry);
  }

  async function provider(entry) {
    if (!entry.provider_id) return;
    const p = await cached(providers, entry.provider_id, `/api/providers/${entry.provider_id}`);
    entry.provider = p;
    render(entry);
  }

  /** A request the page itself just created: no need to read it again. */
  function prime(read) {
    const entry = requests.get(read.id) || { id: read.id, seq: 0 };
    merge(entry, read);
    requests.set(read.id, entry);
    render(entry);
    cached(elders, read.elder_id, `/api/elders/${read.elder_id}`).then((e) => { entry.elder = e; render(entry); });
  }

  // ---- events ----------------------------------------------------------------------------
  function onEvent(frame) {
    window.__consoleSeqs.push(frame.seq);
    if (!frame.request_id) return;
    let entry = requests.get(frame.request_id);
    const fresh = !entry;
    if (fresh) {
      entry = { id: frame.request_id, seq: 0, created_at: frame.at };
      requests.set(entry.id, entry);
    }
    const data = frame.data || {};
    if (frame.type === "request.created") {
      Object.assign(entry, { kind: entry.kind || data.kind, priority: entry.priority || data.priority,
        township: entry.township || data.township, created_at: entry.created_at || frame.at });
    }
    if (frame.seq > entry.seq && frame.status) {
      entry.seq = frame.seq;
      entry.status = frame.status;
      entry.updated_at = frame.at;
      if (data.provider_id && frame.status !== "queued") entry.provider_id = data.provider_id;
      if (frame.status === "queued" || frame.status === "escalated") entry.provider_id = null;
      if (frame.status === "escalated") entry.escalation_reason = data.reason || entry.escalation_reason;
      if (entry.provider_id && (!entry.provider || entry.provider.id !== entry.provider_id)) {
        entry.provider = null;
        if (!fresh) later(() => provider(entry));
      }
    }
    if (fresh && !entry.loaded) later(() => load(entry));
    render(entry);
    ConsoleOutbox.poke();
  }

  // ---- rendering ---------------------------------------------------------------------------
  function drop(entry) {
    if (entry.row) entry.row.remove();
    if (entry.card) entry.card.remove();
    requests.delete(entry.id);
    counts();
  }

  function providerName(entry) {
    if (!entry.provider_id) return "";
    return entry.provider && entry.provider.id === entry.provider_id ? entry.provider.name : `#${entry.provider_id}`;
  }

  function elderName(entry) { return entry.elder ? entry.elder.name : (entry.elder_id ? `#${entry.elder_id}` : "…"); }

  function callback(entry) {
    const phone = entry.elder && entry.elder.phone;
    return phone ? EC.el("a", { class: "tel", href: `tel:${phone}`, title: phone }, `${EC.t("board.callback")} ${phone}`) : null;
  }

  function dispatchButton(entry) {
    return EC.el("button", { type: "button", class: "small", dataset: { dispatch: entry.id },
      onclick: () => openDispatch(entry) }, EC.t("board.dispatch"));
  }

  function render(entry) {
    if (!entry.status) return;
    const cells = [
      EC.el("td", {}, `#${entry.id}`),
      EC.el("td", {}, entry.created_at ? EC.fmtTime(entry.created_at) : ""),
      EC.el("td", {}, elderName(entry)),
      EC.el("td", {}, entry.kind ? EC.t(`kind.${entry.kind}`) : "",
        entry.priority && entry.priority !== "normal" ? EC.el("span", { class: `badge ${entry.priority}` }, EC.t(`priority.${entry.priority}`)) : null),
      EC.el("td", {}, entry.township || ""),
      EC.el("td", {}, EC.el("span", { class: `badge ${entry.status}`, dataset: { status: entry.status } }, EC.t(`status.${entry.status}`))),
      EC.el("td", {}, providerName(entry)),
      EC.el("td", { class: "actions" }, UNPLACED.has(entry.status) ? dispatchButton(entry) : null, callback(entry)),
    ];
    if (!entry.row) {
      entry.row = EC.el("tr", { dataset: { request: entry.id } });
      const body = $("board-body");
      const next = [...body.children].find((tr) => Number(tr.dataset.request) < entry.id);
      body.insertBefore(entry.row, next || null);
    }
    entry.row.replaceChildren(...cells);
    entry.row.dataset.status = entry.status;
    entry.row.hidden = !matches(entry);
    renderEscalation(entry);
    counts();
    // The caller's card lists recent requests: keep their status live too.
    const badge = document.querySelector(`#elder-card .recent li[data-request="${entry.id}"] .badge`);
    if (badge) { badge.className = `badge ${entry.status}`; badge.textContent = EC.t(`status.${entry.status}`); }
  }

  /** An emergency is pinned from the moment it is filed until someone is bound to it, in
   * parallel with matching (the duty operator's phone is texted too); an escalation until it is
   * dispatched. Emergencies first, then the longest-waiting escalations. */
  function pinned(entry) {
    return entry.status === "escalated" || (entry.kind === "emergency" && UNPLACED.has(entry.status));
  }

  function pinNote(entry) {
    if (entry.status === "escalated") {
      const reason = entry.escalation_reason ? EC.t(`reason.${entry.escalation_reason}`) : "";
      return EC.t("board.reason", { reason });
    }
    if (entry.status === "offered") return EC.t("board.emergency_offered", { name: providerName(entry) });
    return EC.t("board.emergency_matching");
  }

  function renderEscalation(entry) {
    if (!pinned(entry)) {
      if (entry.card) { entry.card.remove(); entry.card = null; }
      emptyNote();
      return;
    }
    const emergency = entry.kind === "emergency";
    const card = EC.el("article", { class: "escalation", dataset: { request: entry.id, created: entry.created_at || "", emergency: emergency ? "1" : "" } },
      EC.el("div", { class: "esc-main" },
        emergency ? EC.el("span", { class: "badge urgent" }, EC.t("board.emergency")) : null,
        EC.el("strong", {}, `#${entry.id} ${elderName(entry)}`),
        EC.el("span", {}, `${entry.kind ? EC.t(`kind.${entry.kind}`) : ""} · ${entry.township || ""}`),
        EC.el("span", { class: "reason" }, pinNote(entry)),
        EC.el("span", { class: "age", dataset: { since: entry.created_at || "" } }, EC.t("board.waiting", { age: EC.fmtAge(entry.created_at) }))),
      EC.el("div", { class: "esc-actions" }, dispatchButton(entry), callback(entry)));
    if (entry.card) entry.card.replaceWith(card);
    else {
      const list = $("escalation-list");
      const before = [...list.querySelectorAll(".escalation")].find((c) => {
        const other = c.dataset.emergency === "1";
        if (emergency !== other) return emergency; // emergencies above every escalation
        return c.dataset.created > (entry.created_at || ""); // then the longest-waiting first
      });
      list.insertBefore(card, before || null);
    }
    entry.card = card;
    emptyNote();
  }

  function emptyNote() {
    const list = $("escalation-list");
    const has = list.querySelector(".escalation");
    let note = list.querySelector(".empty");
    if (has && note) note.remove();
    if (!has && !note) list.append(EC.el("p", { class: "empty muted" }, EC.t("board.no_escalated")));
  }

  function matches(entry) {
    const status = $("filter-status").value;
    const kind = $("filter-kind").value;
    const township = $("filter-township").value;
    if (status === "open" && TERMINAL.has(entry.status)) return false;
    if (status && status !== "open" && entry.status !== status) return false;
    if (kind && entry.kind !== kind) return false;
    return !(township && entry.township !== township);
  }

  function refilter() { for (const entry of requests.values()) if (entry.row) entry.row.hidden = !matches(entry); counts(); }

  function counts() {
    const shown = [...requests.values()].filter((e) => e.row && !e.row.hidden).length;
    $("board-count").textContent = EC.t("board.count", { n: shown });
  }

  function tick() {
    document.querySelectorAll(".age[data-since]").forEach((n) => {
      if (n.dataset.since) n.textContent = EC.t("board.waiting", { age: EC.fmtAge(n.dataset.since) });
    });
  }

  // ---- manual dispatch -----------------------------------------------------------------------
  async function openDispatch(entry) {
    const dialog = $("dispatch-dialog");
    $("dispatch-title").textContent = EC.t("dispatch.title", { id: entry.id });
    const body = $("dispatch-body");
    body.replaceChildren(EC.el("p", { class: "muted" }, EC.t("board.loading")));
    if (!dialog.open) dialog.showModal();
    try {
      const answer = await EC.api("GET", `/api/requests/${entry.id}/candidates`);
      body.replaceChildren(candidateTable(entry, answer));
      const first = body.querySelector("button");
      (first || $("dispatch-close")).focus();
    } catch (exc) {
      body.replaceChildren(EC.el("p", { class: "error" }, exc.message || EC.t("error.generic")));
    }
  }

  function candidateTable(entry, answer) {
    if (!answer.candidates.length) {
      const reason = answer.reason ? EC.t(`reason.${answer.reason}`) : "";
      return EC.el("p", { class: "warn" }, EC.t("dispatch.none", { reason }));
    }
    const rows = answer.candidates.map((c) => EC.el("tr", { dataset: { provider: c.provider_id } },
      EC.el("td", {}, c.name, " ", c.declined_before ? EC.el("span", { class: "badge high" }, EC.t("dispatch.declined")) : null,
        EC.el("div", { class: "muted" }, `${EC.t(`kind.${c.kind === "canteen" ? "meal" : c.kind}`)} · ${c.township} · `,
          c.phone ? EC.el("a", { href: `tel:${c.phone}` }, c.phone) : "")),
      EC.el("td", {}, `${c.distance_km.toFixed(1)} km`),
      EC.el("td", {}, EC.el("strong", {}, c.score.toFixed(2)), scoreParts(c.score_parts)),
      EC.el("td", {}, String(c.capacity_left)),
      EC.el("td", {}, EC.el("button", { type: "button", class: "small", onclick: () => dispatch(entry, c) }, EC.t("dispatch.choose")))));
    return EC.el("table", { class: "candidates" },
      EC.el("thead", {}, EC.el("tr", {}, ...["provider", "distance", "score", "left"].map((k) => EC.el("th", {}, EC.t(`dispatch.col.${k}`))), EC.el("th", {}))),
      EC.el("tbody", {}, ...rows));
  }

  /** Why the matcher ranks a provider where it does: every non-zero part of its score
   * (km-equivalents; lower is better, a bonus is negative). */
  function scoreParts(parts) {
    const shown = Object.entries(parts).filter(([, v]) => Math.abs(v) >= 0.005);
    if (!shown.length) return null;
    return EC.el("div", { class: "muted score-parts" },
      shown.map(([k, v]) => `${EC.t(`part.${k}`)} ${v > 0 ? "+" : ""}${Number(v).toFixed(2)}`).join(" · "));
  }

  async function dispatch(entry, candidate) {
    try {
      await EC.api("POST", `/api/requests/${entry.id}/assign`, { provider_id: candidate.provider_id, caregiver_id: candidate.caregiver_id });
      $("dispatch-dialog").close();
      EC.toast(EC.t("dispatch.done", { id: entry.id, name: candidate.name }), "ok");
    } catch (exc) {
      EC.toast(exc.message || EC.t("error.generic"), "error");
    }
  }

  // ---- start -------------------------------------------------------------------------------
  function fillFilters() {
    const opt = (value, key) => EC.el("option", { value }, EC.t(key));
    const keep = (id, options) => { const s = $(id); const v = s.value; s.replaceChildren(...options); s.value = v; };
    keep("filter-status", [opt("", "board.filter.all"), opt("open", "board.filter.open"), ...STATUSES.map((s) => opt(s, `status.${s}`))]);
    keep("filter-kind", [opt("", "board.filter.all"), ...KINDS.map((k) => opt(k, `kind.${k}`))]);
    keep("outbox-status", [opt("", "board.filter.all"), ...MSG_STATUSES.map((s) => opt(s, `msg.${s}`))]);
  }

  async function start() {
    fillFilters();
    const townships = await EC.api("GET", "/api/console/townships");
    $("filter-township").replaceChildren(EC.el("option", { value: "" }, EC.t("board.filter.all")),
      ...townships.map((t) => EC.el("option", { value: t.name }, t.name)));
    ["filter-status", "filter-kind", "filter-township"].forEach((id) => $(id).addEventListener("change", refilter));
    emptyNote();
    const begin = await EC.api("GET", "/api/console/board-start");
    fromTime = new Date(begin.from_time).getTime();
    const banner = EC.liveBanner();
    ConsoleBoard.stream = EC.live({
      since: begin.since,
      onEvent,
      onStatus: (state) => { banner(state); $("live-dot").dataset.state = state; },
    });
    setInterval(tick, 1000);
    document.addEventListener("ec:lang", () => { fillFilters(); for (const e of requests.values()) render(e); });
    return townships;
  }

  return { start, prime, openDispatch, requests, stream: null };
})();

const ConsoleOutbox = (() => {
  let timer = null;
  const $ = (id) => document.getElementById(id);

  async function refresh() {
    const params = new URLSearchParams({ limit: "100" });
    if ($("outbox-audience").value) params.set("audience", $("outbox-audience").value);
    if ($("outbox-status").value) params.set("status", $("outbox-status").value);
    const rows = await EC.api("GET", `/api/messages?${params}`);
    const body = $("outbox-body");
    if (!rows.length) { body.replaceChildren(EC.el("tr", {}, EC.el("td", { colspan: 7, class: "muted" }, EC.t("outbox.none")))); return; }
    body.replaceChildren(...rows.map((m) => EC.el("tr", { dataset: { message: m.id } },
      EC.el("td", {}, EC.fmtTime(m.created_at, true)),
      EC.el("td", {}, m.to),
      EC.el("td", {}, EC.t(`outbox.audience.${m.audience}`)),
      EC.el("td", {}, EC.t(`purpose.${m.purpose}`)),
      EC.el("td", {}, m.request_id ? `#${m.request_id}` : ""),
      EC.el("td", { class: "body" }, m.body),
      EC.el("td", { title: m.error || (m.status === "outbox_only" ? EC.t("msg.outbox_only.hint") : "") }, EC.el("span", { class: `badge msg-${m.status}`, dataset: { status: m.status } }, EC.t(`msg.${m.status}`))))));
  }

  function visible() { return !$("outbox-panel").hidden; }

  /** Messages follow events (an offer, an assignment): refresh soon after, while shown. */
  function poke() {
    if (!visible() || timer) return;
    timer = setTimeout(() => { timer = null; refresh().catch(() => {}); }, 1000);
  }

  function start() {
    ["outbox-audience", "outbox-status"].forEach((id) => $(id).addEventListener("change", () => refresh()));
    $("outbox-refresh").addEventListener("click", () => refresh());
    // Delivery callbacks are not events: poll while the outbox is on screen.
    setInterval(() => { if (visible()) refresh().catch(() => {}); }, 10000);
  }

  return { start, refresh, poke };
})();
