/* The console's "Plans" tab (P): who is overdue (elders past their visit rhythm, open welfare
 * checks) by township, the service plans with pause / resume / end, and a new plan for the elder
 * on the caller card. Self-contained: it shows its own panel and hides it again whenever the
 * board or the outbox tab is shown (by click or shortcut). */
"use strict";

EC.addStrings({
  zh: {
    "tab.plans": "服务计划", "help.plans": "P：服务计划与逾期探访", "plans.overdue": "逾期未探访 / 待核查",
    "plans.overdue.none": "暂无逾期老人", "plans.overdue.days": "逾期{n}天", "plans.overdue.last": "最近探访 {at}",
    "plans.overdue.never": "半年内无探访", "plans.list": "服务计划", "plans.filter.status": "状态", "plans.filter.kind": "服务",
    "plans.filter.township": "镇", "plans.all": "全部", "plans.status.active": "执行中", "plans.status.paused": "已暂停",
    "plans.status.ended": "已结束", "plans.col.id": "编号", "plans.col.elder": "老人", "plans.col.what": "服务",
    "plans.col.when": "时间", "plans.col.status": "状态", "plans.col.next": "下次", "plans.col.actions": "操作",
    "plans.every": "每{n}天", "plans.weekdays": "每周{days}", "plans.pause": "暂停", "plans.resume": "恢复", "plans.end": "结束",
    "plans.reason": "原因（可不填）", "plans.none": "暂无服务计划", "plans.new": "为来电老人新建计划",
    "plans.new.pick": "请先在左侧查询并选择老人。", "plans.new.for": "服务对象：{name}", "plans.new.kind": "服务类型",
    "plans.new.days": "星期", "plans.new.every": "间隔天数", "plans.new.start": "开始时间", "plans.new.end": "结束时间",
    "plans.new.from": "开始日期", "plans.new.note": "备注", "plans.new.submit": "创建计划", "plans.created": "已创建计划 #{id}",
    "plans.changed": "计划 #{id}：{status}", "plans.refresh": "刷新",
    "day.1": "一", "day.2": "二", "day.3": "三", "day.4": "四", "day.5": "五", "day.6": "六", "day.7": "日",
    "reason.rhythm_overdue": "超过探访周期", "reason.failed_visit": "上门未成功", "reason.not_accepted": "预约无人接单",
    "reason.not_delivered": "预约服务未送达",
  },
  en: {
    "tab.plans": "Plans", "help.plans": "P: plans and overdue visits", "plans.overdue": "Overdue and welfare checks",
    "plans.overdue.none": "Nobody overdue", "plans.overdue.days": "{n} days overdue", "plans.overdue.last": "last visit {at}",
    "plans.overdue.never": "no visit in 6 months", "plans.list": "Service plans", "plans.filter.status": "Status",
    "plans.filter.kind": "Service", "plans.filter.township": "Township", "plans.all": "All", "plans.status.active": "Active",
    "plans.status.paused": "Paused", "plans.status.ended": "Ended", "plans.col.id": "No.", "plans.col.elder": "Elder",
    "plans.col.what": "Service", "plans.col.when": "When", "plans.col.status": "Status", "plans.col.next": "Next",
    "plans.col.actions": "Actions", "plans.every": "every {n} days", "plans.weekdays": "{days}", "plans.pause": "Pause",
    "plans.resume": "Resume", "plans.end": "End", "plans.reason": "Reason (optional)", "plans.none": "No plans",
    "plans.new": "New plan for the caller", "plans.new.pick": "Look up and choose an elder first.",
    "plans.new.for": "For: {name}", "plans.new.kind": "Service", "plans.new.days": "Weekdays", "plans.new.every": "Every (days)",
    "plans.new.start": "From", "plans.new.end": "To", "plans.new.from": "Starts on", "plans.new.note": "Note", "plans.new.submit": "Create plan",
    "plans.created": "Plan #{id} created", "plans.changed": "Plan #{id}: {status}", "plans.refresh": "Refresh",
    "day.1": "Mon", "day.2": "Tue", "day.3": "Wed", "day.4": "Thu", "day.5": "Fri", "day.6": "Sat", "day.7": "Sun",
    "reason.rhythm_overdue": "past visit rhythm", "reason.failed_visit": "failed visit", "reason.not_accepted": "booking not taken",
    "reason.not_delivered": "booking not delivered",
  },
});

const ConsolePlans = (() => {
  const $ = (id) => document.getElementById(id);
  const KINDS = ["meal", "home_care", "day_care", "visit"];
  const PANELS = ["board-panel", "outbox-panel"];

  function reason(r) {
    const key = `reason.${r}`;
    return EC.t(key) === key ? EC.t(`reason.${r.split(":")[0]}`) : EC.t(key);
  }

  function show() {
    PANELS.forEach((id) => { $(id).hidden = true; });
    ["tab-board", "tab-outbox"].forEach((id) => $(id).setAttribute("aria-selected", "false"));
    $("plans-panel").hidden = false;
    $("tab-plans").setAttribute("aria-selected", "true");
    $("tab-plans").focus();
    refresh().catch(fail);
  }

  function hideWhenOthersShow() {
    const observer = new MutationObserver(() => {
      if (PANELS.some((id) => !$(id).hidden)) {
        $("plans-panel").hidden = true;
        $("tab-plans").setAttribute("aria-selected", "false");
      }
    });
    PANELS.forEach((id) => observer.observe($(id), { attributes: true, attributeFilter: ["hidden"] }));
  }

  // ---- overdue --------------------------------------------------------------------------------
  async function overdue() {
    const town = $("plans-township").value;
    const found = await EC.api("GET", `/api/welfare/overdue${town ? `?township=${encodeURIComponent(town)}` : ""}`);
    const items = found.elders.map((e) => EC.el("li", { class: "overdue", dataset: { elder: e.elder_id } },
      EC.el("strong", {}, e.name), ` ${e.township} · `,
      EC.el("span", { class: "reason" }, e.reasons.map(reason).join("、")),
      e.overdue_days ? ` · ${EC.t("plans.overdue.days", { n: e.overdue_days })}` : "",
      ` · ${e.last_visit_at ? EC.t("plans.overdue.last", { at: EC.fmtTime(e.last_visit_at, true) }) : EC.t("plans.overdue.never")}`,
      ...e.checks.map((c) => EC.el("span", { class: `badge ${c.status}` }, `#${c.request_id}`))));
    $("overdue-list").replaceChildren(...(items.length ? items : [EC.el("li", { class: "muted" }, EC.t("plans.overdue.none"))]));
    $("overdue-summary").textContent = Object.entries(found.by_township).map(([t, n]) => `${t} ${n}`).join(" · ");
  }

  // ---- plans ----------------------------------------------------------------------------------
  function when(p) {
    const days = p.kind === "visit" ? EC.t("plans.every", { n: p.every_days })
      : EC.t("plans.weekdays", { days: p.weekdays.map((d) => EC.t(`day.${d}`)).join(EC.lang === "zh" ? "、" : " ") });
    return `${days} ${p.start_time}-${p.end_time}`;
  }

  function what(p) {
    const extra = p.kind === "meal" ? ` (${EC.t(`intake.slot.${p.slot}`)}${p.delivery ? `, ${EC.t("intake.delivery")}` : ""})` : "";
    return EC.t(`kind.${p.kind}`) + extra;
  }

  async function act(plan, action) {
    const body = action === "resume" ? {} : { reason: $("plans-reason").value.trim() };
    try {
      const done = await EC.api("POST", `/api/plans/${plan.id}/${action}`, body);
      EC.toast(EC.t("plans.changed", { id: done.id, status: EC.t(`plans.status.${done.status}`) }), "ok");
      await list();
    } catch (exc) { fail(exc); }
  }

  function actions(p) {
    const button = (action) => EC.el("button", { type: "button", class: `small ${action === "end" ? "danger" : "secondary"}`,
      dataset: { action, plan: p.id }, onclick: () => act(p, action) }, EC.t(`plans.${action}`));
    if (p.status === "active") return [button("pause"), button("end")];
    if (p.status === "paused") return [button("resume"), button("end")];
    return [];
  }

  async function list() {
    const params = new URLSearchParams({ limit: "200" });
    for (const [name, id] of [["status", "plans-status"], ["kind", "plans-kind"], ["township", "plans-township"]]) {
      if ($(id).value) params.set(name, $(id).value);
    }
    const plans = await EC.api("GET", `/api/plans?${params}`);
    const rows = plans.map((p) => EC.el("tr", { dataset: { plan: p.id, status: p.status } },
      EC.el("td", {}, `#${p.id}`), EC.el("td", {}, `${p.elder_name} · ${p.township}`), EC.el("td", {}, what(p)),
      EC.el("td", {}, when(p)), EC.el("td", {}, EC.el("span", { class: `badge plan-${p.status}` }, EC.t(`plans.status.${p.status}`)),
        p.status_reason ? EC.el("span", { class: "muted" }, ` ${p.status_reason}`) : ""),
      EC.el("td", {}, p.next_on || "—"), EC.el("td", { class: "actions" }, ...actions(p))));
    $("plans-body").replaceChildren(...(rows.length ? rows : [EC.el("tr", {}, EC.el("td", { colspan: 7, class: "muted" }, EC.t("plans.none")))]));
  }

  // ---- a new plan for the elder on the caller card ----------------------------------------------
  function currentElder() {
    const card = $("elder-card");
    return card ? { id: Number(card.dataset.elder), name: card.querySelector("h3").firstChild.textContent.trim() } : null;
  }

  function formFor() {
    const elder = currentElder();
    $("plan-form").hidden = !elder;
    $("plan-for").textContent = elder ? EC.t("plans.new.for", { name: elder.name }) : EC.t("plans.new.pick");
    const kind = $("plan-kind").value;
    $("plan-days").hidden = kind === "visit";
    $("plan-every-row").hidden = kind !== "visit";
    $("plan-times").hidden = kind === "meal";
    $("plan-meal").hidden = kind !== "meal";
  }

  async function create(event) {
    event.preventDefault();
    const elder = currentElder();
    if (!elder) return;
    const kind = $("plan-kind").value;
    const body = { elder_id: elder.id, kind, note: $("plan-note").value.trim() };
    if (kind === "visit") body.every_days = Number($("plan-every").value || 7);
    else body.weekdays = [...document.querySelectorAll("#plan-days input:checked")].map((b) => Number(b.value));
    if (kind === "meal") Object.assign(body, { slot: $("plan-slot").value, delivery: $("plan-delivery").checked });
    else if ($("plan-start").value && $("plan-end").value) Object.assign(body, { start_time: $("plan-start").value, end_time: $("plan-end").value });
    if ($("plan-from").value) body.starts_on = $("plan-from").value;
    try {
      const plan = await EC.api("POST", "/api/plans", body);
      EC.toast(EC.t("plans.created", { id: plan.id }), "ok");
      await list();
    } catch (exc) { fail(exc); }
  }

  function fail(exc) {
    const detail = Array.isArray(exc.detail) ? exc.detail.map((d) => d.msg).join("; ") : exc.message;
    EC.toast(detail || EC.t("error.generic"), "error");
  }

  async function refresh() {
    formFor();
    await Promise.all([overdue(), list()]);
  }

  function onKey(ev) {
    if (ev.key.toLowerCase() !== "p" || ev.ctrlKey || ev.metaKey || ev.altKey || document.querySelector("dialog[open]")) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    ev.preventDefault();
    show();
  }

  function start() {
    const towns = $("plans-township");
    EC.api("GET", "/api/console/townships").then((list) => towns.append(...list.map((t) => EC.el("option", { value: t.name }, t.name))));
    const options = () => KINDS.map((k) => EC.el("option", { value: k, "data-i18n": `kind.${k}` }, EC.t(`kind.${k}`)));
    $("plans-kind").append(...options());
    $("plan-kind").append(...options());
    $("plan-days").append(...[1, 2, 3, 4, 5, 6, 7].map((d) => EC.el("span", { class: "check" },
      EC.el("input", { type: "checkbox", id: `plan-day-${d}`, value: d, checked: d <= 5 }),
      EC.el("label", { for: `plan-day-${d}`, "data-i18n": `day.${d}` }, EC.t(`day.${d}`)))));
    $("tab-plans").addEventListener("click", show);
    ["plans-status", "plans-kind", "plans-township"].forEach((id) => $(id).addEventListener("change", () => refresh().catch(fail)));
    $("plans-refresh").addEventListener("click", () => refresh().catch(fail));
    $("plan-kind").addEventListener("change", formFor);
    $("plan-form").addEventListener("submit", create);
    new MutationObserver(formFor).observe($("caller"), { childList: true, subtree: true });
    document.addEventListener("keydown", onKey);
    document.addEventListener("ec:lang", () => { if (!$("plans-panel").hidden) refresh().catch(fail); });
    hideWhenOthersShow();
    formFor();
  }

  document.addEventListener("DOMContentLoaded", () => { if (EC.requireRole("operator", "admin")) start(); });
  return { show, refresh };
})();
