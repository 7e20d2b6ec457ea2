/* The console's "Visits" tab (key V): visits flagged by verification (position, phone clock,
 * duration), waiting for an operator; the recorded facts of each; a correction approved or
 * rejected with a reason (kept as its own record, the original untouched); and the CSV export.
 * Self-contained: it fills its panel beside the board, the outbox and the other tabs, hides
 * them when shown, and hides itself whenever one of them is shown. */
"use strict";

EC.addStrings({
  zh: {
    "tab.visits": "访视核查", "help.visits": "V：访视核查",
    "visits.review": "核查状态", "visits.review.open": "待核查", "visits.review.flagged": "全部有标记",
    "visits.review.approved": "已核准", "visits.review.rejected": "已驳回", "visits.review.clean": "无异常", "visits.review.all": "全部访视",
    "visits.from": "从", "visits.to": "到", "visits.provider": "机构", "visits.all": "全部",
    "visits.refresh": "刷新", "visits.export": "导出 CSV", "visits.none": "没有符合条件的访视",
    "visits.col.id": "编号", "visits.col.time": "签到时间", "visits.col.elder": "老人", "visits.col.kind": "服务",
    "visits.col.provider": "机构 / 人员", "visits.col.duration": "时长", "visits.col.flags": "标记",
    "visits.col.outcome": "结果", "visits.col.review": "核查", "visits.col.action": "操作",
    "visits.open": "审核", "visits.minutes": "{n} 分钟",
    "flag.location_mismatch": "位置偏离", "flag.clock_skew": "手机时间不准", "flag.too_short": "服务时长过短",
    "outcome.completed": "已完成", "outcome.not_home": "老人不在家", "outcome.refused": "拒绝服务", "outcome.in_hospital": "住院",
    "review.clean": "无异常", "review.open": "待核查", "review.approved": "已核准", "review.rejected": "已驳回",
    "place.elder_home": "老人家中", "place.provider_site": "机构场所",
    "visit.title": "访视 #{id}（服务 #{request}）", "visit.place": "服务地点", "visit.in": "签到", "visit.out": "签退",
    "visit.fact": "{server}（手机时间 {device}），距服务地点 {m} 米", "visit.no_device": "未提供",
    "visit.summary": "服务记录", "visit.verified": "计入补贴结算", "visit.yes": "是", "visit.no": "否",
    "visit.history": "核查记录", "visit.no_history": "暂无核查记录",
    "visit.entry": "{at} {by}：{decision}，{reason}",
    "visit.reason": "核查说明（必填，将永久保存）", "visit.start": "更正签到时间（选填）", "visit.end": "更正签退时间（选填）",
    "visit.approve": "核准", "visit.reject": "驳回", "visit.close": "关闭", "visit.saved": "已保存核查记录",
    "decision.approve": "核准", "decision.reject": "驳回",
  },
  en: {
    "tab.visits": "Visits", "help.visits": "V: visit review",
    "visits.review": "Review", "visits.review.open": "To review", "visits.review.flagged": "All flagged",
    "visits.review.approved": "Approved", "visits.review.rejected": "Rejected", "visits.review.clean": "Clean", "visits.review.all": "All visits",
    "visits.from": "From", "visits.to": "To", "visits.provider": "Provider", "visits.all": "All",
    "visits.refresh": "Refresh", "visits.export": "Export CSV", "visits.none": "No visits match",
    "visits.col.id": "No.", "visits.col.time": "Checked in", "visits.col.elder": "Elder", "visits.col.kind": "Service",
    "visits.col.provider": "Provider / carer", "visits.col.duration": "Length", "visits.col.flags": "Flags",
    "visits.col.outcome": "Outcome", "visits.col.review": "Review", "visits.col.action": "",
    "visits.open": "Review", "visits.minutes": "{n} min",
    "flag.location_mismatch": "away from the place", "flag.clock_skew": "phone clock off", "flag.too_short": "too short",
    "outcome.completed": "completed", "outcome.not_home": "not at home", "outcome.refused": "refused", "outcome.in_hospital": "in hospital",
    "review.clean": "clean", "review.open": "to review", "review.approved": "approved", "review.rejected": "rejected",
    "place.elder_home": "the elder's home", "place.provider_site": "the provider's site",
    "visit.title": "Visit #{id} (request #{request})", "visit.place": "Place", "visit.in": "Check-in", "visit.out": "Check-out",
    "visit.fact": "{server} (phone: {device}), {m} m from the place", "visit.no_device": "not sent",
    "visit.summary": "Visit notes", "visit.verified": "Counts for the subsidy", "visit.yes": "yes", "visit.no": "no",
    "visit.history": "Reviews", "visit.no_history": "Not reviewed yet",
    "visit.entry": "{at} {by}: {decision}, {reason}",
    "visit.reason": "Reason (required, kept for good)", "visit.start": "Corrected check-in (optional)", "visit.end": "Corrected check-out (optional)",
    "visit.approve": "Approve", "visit.reject": "Reject", "visit.close": "Close", "visit.saved": "Review saved",
    "decision.approve": "approved", "decision.reject": "rejected",
  },
});

const ConsoleVisits = (() => {
  const el = EC.el;
  const $ = (id) => document.getElementById(id);
  const REVIEWS = ["open", "flagged", "approved", "rejected", "clean", "all"];
  let current = null; // the visit in the dialog
  let providersLoaded = false;

  function query() {
    const p = new URLSearchParams({ limit: "200" });
    const review = $("visits-review").value;
    if (review === "flagged") p.set("flagged", "true");
    else if (review !== "all") p.set("review", review);
    if ($("visits-from").value) p.set("from", $("visits-from").value);
    if ($("visits-to").value) p.set("to", $("visits-to").value);
    if ($("visits-provider").value) p.set("provider_id", $("visits-provider").value);
    return p;
  }

  function flags(v) {
    return v.flags.map((f) => el("span", { class: "badge high", dataset: { flag: f } }, EC.t(`flag.${f}`)));
  }

  function row(v) {
    const review = el("button", { type: "button", class: "small", dataset: { review: v.id } }, EC.t("visits.open"));
    review.addEventListener("click", () => open(v.id));
    return el("tr", { dataset: { visit: v.id, review: v.review } },
      el("td", {}, `#${v.id} / ${v.request_id}`),
      el("td", {}, EC.fmtTime(v.check_in_at, true)),
      el("td", {}, v.elder_name || `#${v.elder_id}`),
      el("td", {}, EC.t(`kind.${v.kind}`)),
      el("td", {}, v.provider_name || `#${v.provider_id}`, v.caregiver_name ? ` / ${v.caregiver_name}` : ""),
      el("td", {}, v.duration_minutes !== null ? EC.t("visits.minutes", { n: v.duration_minutes }) : "—"),
      el("td", { class: "flags" }, ...flags(v)),
      el("td", {}, EC.t(`outcome.${v.outcome}`)),
      el("td", {}, el("span", { class: `badge review-${v.review}` }, EC.t(`review.${v.review}`))),
      el("td", {}, review));
  }

  async function refresh() {
    const rows = await EC.api("GET", `/api/visits?${query()}`);
    const body = $("visits-body");
    body.replaceChildren(...(rows.length ? rows.map(row) : [el("tr", {}, el("td", { colspan: 10, class: "muted" }, EC.t("visits.none")))]));
  }

  async function exportCsv() {
    const r = await fetch(`/api/visits/export.csv?${query()}`, { headers: { Authorization: `Bearer ${EC.session.token}` } });
    if (!r.ok) { EC.toast(EC.t("error.generic"), "error"); return; }
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", { href: url, download: `visits-${new Date().toISOString().slice(0, 10)}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  }

  // ---- one visit -----------------------------------------------------------------------------
  function fact(v, end) {
    const server = end === "in" ? v.check_in_at : v.check_out_at;
    if (!server) return "—";
    const device = end === "in" ? v.check_in_device_at : v.check_out_device_at;
    const m = end === "in" ? v.check_in_distance_m : v.check_out_distance_m;
    return EC.t("visit.fact", { server: EC.fmtTime(server, true), device: device ? EC.fmtTime(device, true) : EC.t("visit.no_device"), m: Math.round(m) });
  }

  function details(v) {
    const dl = (pairs) => el("dl", { class: "facts" }, ...pairs.flatMap(([k, val]) => [el("dt", {}, EC.t(k)), el("dd", {}, val)]));
    const history = v.corrections.length
      ? el("ul", { class: "history" }, ...v.corrections.map((c) => el("li", { dataset: { correction: c.id } }, EC.t("visit.entry",
        { at: EC.fmtTime(c.created_at, true), by: c.by, decision: EC.t(`decision.${c.decision}`), reason: c.reason }))))
      : el("p", { class: "muted" }, EC.t("visit.no_history"));
    return [
      el("p", {}, `${v.elder_name || ""} · ${EC.t(`kind.${v.kind}`)} · ${v.provider_name || ""}${v.caregiver_name ? ` / ${v.caregiver_name}` : ""}`),
      el("p", {}, ...flags(v), " ", el("span", { class: `badge review-${v.review}` }, EC.t(`review.${v.review}`))),
      dl([["visit.place", EC.t(`place.${v.place}`)], ["visit.in", fact(v, "in")], ["visit.out", fact(v, "out")],
        ["visits.col.outcome", EC.t(`outcome.${v.outcome}`)], ["visit.summary", v.summary || "—"],
        ["visit.verified", EC.t(v.verified ? "visit.yes" : "visit.no")]]),
      el("h3", {}, EC.t("visit.history")), history,
    ];
  }

  async function open(id) {
    current = await EC.api("GET", `/api/visits/${id}`);
    $("visit-title").textContent = EC.t("visit.title", { id: current.id, request: current.request_id });
    $("visit-details").replaceChildren(...details(current));
    $("correction-reason").value = "";
    $("correction-start").value = "";
    $("correction-end").value = "";
    $("visit-dialog").showModal();
    $("correction-reason").focus();
  }

  const localIso = (value) => (value ? `${value}:00+08:00` : undefined); // the operator types Asia/Shanghai time

  async function decide(decision) {
    if (!current) return;
    const body = { decision, reason: $("correction-reason").value.trim() };
    const start = localIso($("correction-start").value);
    const end = localIso($("correction-end").value);
    if (start) body.corrected_check_in_at = start;
    if (end) body.corrected_check_out_at = end;
    try {
      await EC.api("POST", `/api/visits/${current.id}/corrections`, body);
      const fresh = await EC.api("GET", `/api/visits/${current.id}`);
      const old = document.querySelector(`#visits-body tr[data-visit="${fresh.id}"]`);
      if (old) old.replaceWith(row(fresh)); // stays in view until the next refresh
      $("visit-dialog").close();
      EC.toast(EC.t("visit.saved"), "ok");
    } catch (exc) {
      const text = Array.isArray(exc.detail) ? exc.detail.map((d) => d.msg).join("; ") : exc.message;
      $("correction-error").textContent = text || EC.t("error.generic");
    }
  }

  // ---- the panel and its tab -------------------------------------------------------------------
  function build() {
    const opt = (value, key) => el("option", { value }, EC.t(key));
    const panel = $("visits-panel");
    panel.replaceChildren(
      el("div", { class: "filters" },
        el("label", { for: "visits-review" }, EC.t("visits.review")),
        el("select", { id: "visits-review" }, ...REVIEWS.map((r) => opt(r, `visits.review.${r}`))),
        el("label", { for: "visits-from" }, EC.t("visits.from")), el("input", { id: "visits-from", type: "date" }),
        el("label", { for: "visits-to" }, EC.t("visits.to")), el("input", { id: "visits-to", type: "date" }),
        el("label", { for: "visits-provider" }, EC.t("visits.provider")),
        el("select", { id: "visits-provider" }, opt("", "visits.all")),
        el("button", { type: "button", class: "secondary", id: "visits-refresh" }, EC.t("visits.refresh")),
        el("button", { type: "button", class: "secondary", id: "visits-export" }, EC.t("visits.export"))),
      el("table", { id: "visits-table" },
        el("thead", {}, el("tr", {}, ...["id", "time", "elder", "kind", "provider", "duration", "flags", "outcome", "review", "action"]
          .map((c) => el("th", {}, EC.t(`visits.col.${c}`))))),
        el("tbody", { id: "visits-body" })));
    ["visits-review", "visits-from", "visits-to", "visits-provider"].forEach((id) => $(id).addEventListener("change", () => refresh().catch(() => {})));
    $("visits-refresh").addEventListener("click", () => refresh().catch(() => {}));
    $("visits-export").addEventListener("click", () => exportCsv().catch(() => {}));
    document.body.append(el("dialog", { id: "visit-dialog", "aria-labelledby": "visit-title" },
      el("h2", { id: "visit-title" }), el("div", { id: "visit-details" }),
      el("label", { for: "correction-reason" }, EC.t("visit.reason")),
      el("textarea", { id: "correction-reason", rows: 2, maxlength: 500 }),
      el("div", { class: "grid2" },
        el("div", {}, el("label", { for: "correction-start" }, EC.t("visit.start")), el("input", { id: "correction-start", type: "datetime-local" })),
        el("div", {}, el("label", { for: "correction-end" }, EC.t("visit.end")), el("input", { id: "correction-end", type: "datetime-local" }))),
      el("p", { class: "error", id: "correction-error", role: "alert" }),
      el("div", { class: "row" },
        el("button", { type: "button", id: "correction-approve", onclick: () => decide("approve") }, EC.t("visit.approve")),
        el("button", { type: "button", class: "danger", id: "correction-reject", onclick: () => decide("reject") }, EC.t("visit.reject")),
        el("button", { type: "button", class: "secondary", onclick: () => $("visit-dialog").close() }, EC.t("visit.close")))));
    $("visit-dialog").addEventListener("close", () => { $("correction-error").textContent = ""; });
  }

  async function loadProviders() {
    if (providersLoaded) return;
    providersLoaded = true;
    const list = await EC.api("GET", "/api/providers?limit=1000");
    $("visits-provider").append(...list.map((p) => el("option", { value: p.id }, p.name)));
  }

  /** The console's other tab panels (board, outbox, and whatever other tabs were added). */
  function others() {
    return [...document.querySelectorAll('.console-right [role="tabpanel"]')].filter((p) => p.id !== "visits-panel");
  }

  function show() {
    others().forEach((panel) => { panel.hidden = true; });
    document.querySelectorAll('.console-right [role="tab"]').forEach((tab) => {
      tab.setAttribute("aria-selected", String(tab.id === "tab-visits"));
    });
    $("visits-panel").hidden = false;
    $("tab-visits").focus();
    refresh().catch((exc) => EC.toast(exc.message || EC.t("error.generic"), "error"));
    loadProviders().catch(() => { providersLoaded = false; });
  }

  function hide() {
    $("visits-panel").hidden = true;
    $("tab-visits").setAttribute("aria-selected", "false");
  }

  // console.css styles the board's and outbox's tables by id; the same look for this one.
  const STYLE = `#visits-table { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); font-size: 14px; }
    #visits-table td { padding: 4px 8px; vertical-align: middle; white-space: nowrap; }
    #visits-table td.flags { white-space: normal; } #visits-table .badge { margin-right: 4px; }
    .badge.review-open { background: #ffe0b2; } .badge.review-approved { background: #e8f5e9; }
    .badge.review-rejected { background: var(--danger); color: #fff; } .badge.review-clean { background: #eceff1; color: var(--muted); }
    #visit-dialog dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
    #visit-dialog dt { color: var(--muted); } #visit-dialog dd { margin: 0; }
    #visit-dialog textarea { width: 100%; } #visit-dialog .row { margin-top: 8px; }
    #visit-dialog .history { margin: 0; padding-left: 18px; font-size: 14px; }`;

  function start() {
    if (!$("visits-panel")) return;
    document.head.append(el("style", {}, STYLE));
    build();
    $("tab-visits").addEventListener("click", show);
    // Every other tab shows itself by un-hiding its panel: step aside then.
    const watch = new MutationObserver(() => { if (others().some((panel) => !panel.hidden)) hide(); });
    others().forEach((panel) => watch.observe(panel, { attributes: true, attributeFilter: ["hidden"] }));
    document.addEventListener("keydown", (ev) => {
      if (ev.key.toLowerCase() !== "v" || ev.ctrlKey || ev.metaKey || ev.altKey || document.querySelector("dialog[open]")) return;
      if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
      ev.preventDefault();
      show();
    });
    document.addEventListener("ec:lang", () => { const shown = !$("visits-panel").hidden; $("visit-dialog").remove(); build(); providersLoaded = false; if (shown) show(); });
  }

  document.addEventListener("DOMContentLoaded", start);
  return { refresh, open, show };
})();
