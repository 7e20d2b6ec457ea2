/* The managers' dashboard: the plan's indicators with their targets, the period's figures,
 * four charts (Chart.js, served by the API), who is overdue, the subsidy ledger, CSV downloads.
 * Filters: a date range and a township. Simplified Chinese first, English switchable. */
"use strict";

EC.addStrings({
  zh: {
    "manager.title": "统计看板", "mgr.from": "开始日期", "mgr.to": "结束日期", "mgr.township": "镇（乡）",
    "mgr.all_townships": "全区", "mgr.last7": "近7天", "mgr.last30": "近30天", "mgr.last90": "近90天",
    "mgr.last365": "近一年", "mgr.apply": "查询", "mgr.loading": "正在加载…", "mgr.loaded": "已更新 {time}",
    "mgr.indicators": "规划指标", "mgr.summary": "服务概况", "mgr.target_min": "目标 ≥ {v}", "mgr.target_max": "目标 ≤ {v}",
    "ind.meal_township_share": "助餐服务覆盖镇（乡）", "ind.day_care_township_share": "日间照料中心服务镇（乡）",
    "ind.visited_on_rhythm_share": "独居老人按期探访率", "ind.average_rating": "平均服务评分", "ind.complaint_rate": "投诉率",
    "sum.requests": "服务请求", "sum.completion": "完成率", "sum.escalation": "转人工率", "sum.assign": "派单用时 中位/P90",
    "sum.arrival": "到达用时 中位/P90", "sum.failed": "上门未成功", "sum.welfare": "关爱核查", "sum.ratings": "评价 / 投诉",
    "mgr.chart.daily": "每日服务请求", "mgr.chart.township": "各镇服务请求", "mgr.chart.assign": "派单用时分布",
    "mgr.chart.utilization": "机构容量利用率", "mgr.series.requests": "请求", "mgr.series.served": "已完成",
    "mgr.series.escalated": "转人工", "mgr.series.count": "请求数", "mgr.series.utilization": "利用率",
    "mgr.overdue": "逾期未探访 / 待核查老人", "mgr.overdue_count": "共 {n} 人", "mgr.none": "暂无",
    "mgr.col.elder": "老人", "mgr.col.township": "镇（乡）", "mgr.col.reason": "原因", "mgr.col.overdue": "逾期天数",
    "mgr.col.last_visit": "最近探访", "mgr.col.checks": "核查单", "mgr.ledger": "补贴台账", "mgr.month": "月份",
    "mgr.col.entitled": "享受补贴人数", "mgr.col.entitlement": "补贴额度", "mgr.col.subsidy": "已使用", "mgr.col.self_pay": "自付",
    "mgr.quality": "机构评价与投诉", "mgr.col.provider": "服务机构", "mgr.col.ratings": "评价数", "mgr.col.average": "平均分",
    "mgr.col.complaints": "投诉", "mgr.downloads": "数据下载（CSV）", "mgr.dl.requests": "服务请求明细",
    "mgr.dl.ledger_provider": "台账（按机构）", "mgr.dl.ledger_township": "台账（按镇）", "mgr.dl.ledger_elder": "台账（按老人）",
    "led.entitlement": "补贴额度", "led.subsidy": "已使用补贴", "led.self_pay": "自付金额", "led.visits": "计入服务次数",
    "led.not_drawn": "未计入（未核验/未成功/已故）", "mgr.yuan": "¥{v}", "mgr.never": "半年内无",
    "reason.rhythm_overdue": "超过探访周期", "reason.failed_visit": "上门未成功", "reason.failed_visit:not_home": "上门未遇",
    "reason.failed_visit:refused": "拒绝服务", "reason.failed_visit:in_hospital": "住院", "reason.not_accepted": "预约无人接单",
    "reason.not_delivered": "预约服务未送达", "reason.welfare_check": "关爱核查",
    "kind.canteen": "老人家食堂", "kind.day_care_center": "日间照料中心", "kind.home_care_provider": "居家养老服务",
    "bucket.le": "<{v}", "bucket.over": "≥{v}",
  },
  en: {
    "manager.title": "Statistics", "mgr.from": "From", "mgr.to": "To", "mgr.township": "Township",
    "mgr.all_townships": "Whole district", "mgr.last7": "7 days", "mgr.last30": "30 days", "mgr.last90": "90 days",
    "mgr.last365": "1 year", "mgr.apply": "Show", "mgr.loading": "Loading…", "mgr.loaded": "Updated {time}",
    "mgr.indicators": "Plan indicators", "mgr.summary": "Service figures", "mgr.target_min": "target ≥ {v}", "mgr.target_max": "target ≤ {v}",
    "ind.meal_township_share": "Townships with meal service in use", "ind.day_care_township_share": "Townships whose day-care served",
    "ind.visited_on_rhythm_share": "Elders living alone visited on rhythm", "ind.average_rating": "Average rating", "ind.complaint_rate": "Complaint rate",
    "sum.requests": "Requests", "sum.completion": "Completed", "sum.escalation": "To operators", "sum.assign": "Time to assign p50/p90",
    "sum.arrival": "Time to arrival p50/p90", "sum.failed": "Failed visits", "sum.welfare": "Welfare checks", "sum.ratings": "Ratings / complaints",
    "mgr.chart.daily": "Requests per day", "mgr.chart.township": "Requests by township", "mgr.chart.assign": "Time to assign",
    "mgr.chart.utilization": "Capacity in use", "mgr.series.requests": "Requests", "mgr.series.served": "Completed",
    "mgr.series.escalated": "To operators", "mgr.series.count": "Requests", "mgr.series.utilization": "Utilization",
    "mgr.overdue": "Overdue and welfare checks", "mgr.overdue_count": "{n} elders", "mgr.none": "None",
    "mgr.col.elder": "Elder", "mgr.col.township": "Township", "mgr.col.reason": "Reason", "mgr.col.overdue": "Days overdue",
    "mgr.col.last_visit": "Last visit", "mgr.col.checks": "Checks", "mgr.ledger": "Subsidy ledger", "mgr.month": "Month",
    "mgr.col.entitled": "Entitled", "mgr.col.entitlement": "Entitlement", "mgr.col.subsidy": "Drawn", "mgr.col.self_pay": "Own payment",
    "mgr.quality": "Ratings and complaints", "mgr.col.provider": "Provider", "mgr.col.ratings": "Ratings", "mgr.col.average": "Average",
    "mgr.col.complaints": "Complaints", "mgr.downloads": "Downloads (CSV)", "mgr.dl.requests": "Requests",
    "mgr.dl.ledger_provider": "Ledger by provider", "mgr.dl.ledger_township": "Ledger by township", "mgr.dl.ledger_elder": "Ledger by elder",
    "led.entitlement": "Entitlement", "led.subsidy": "Subsidy drawn", "led.self_pay": "Own payment", "led.visits": "Visits drawing",
    "led.not_drawn": "Not drawing (unverified/failed/deceased)", "mgr.yuan": "¥{v}", "mgr.never": "none in 6 months",
    "reason.rhythm_overdue": "Past visit rhythm", "reason.failed_visit": "Failed visit", "reason.failed_visit:not_home": "Not at home",
    "reason.failed_visit:refused": "Refused", "reason.failed_visit:in_hospital": "In hospital", "reason.not_accepted": "Booking not taken",
    "reason.not_delivered": "Booking not delivered", "reason.welfare_check": "Welfare check",
    "kind.canteen": "Canteens", "kind.day_care_center": "Day-care centers", "kind.home_care_provider": "Home care",
    "bucket.le": "<{v}", "bucket.over": "≥{v}",
  },
});

const Manager = (() => {
  const $ = (id) => document.getElementById(id);
  const charts = {};
  let data = null;
  const KIND_LABEL = { canteen: "kind.canteen", day_care: "kind.day_care_center", home_care: "kind.home_care_provider" };

  // ---- formatting ----------------------------------------------------------------------------
  const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
  const num = (v) => (v === null || v === undefined ? "—" : new Intl.NumberFormat(EC.lang === "zh" ? "zh-CN" : "en-GB").format(v));
  const yuan = (v) => EC.t("mgr.yuan", { v: num(Math.round(v * 100) / 100) });
  function secs(v) {
    if (v === null || v === undefined) return "—";
    if (v < 90) return EC.lang === "zh" ? `${Math.round(v)}秒` : `${Math.round(v)} s`;
    if (v < 5400) return EC.lang === "zh" ? `${Math.round(v / 60)}分钟` : `${Math.round(v / 60)} min`;
    return EC.lang === "zh" ? `${(v / 3600).toFixed(1)}小时` : `${(v / 3600).toFixed(1)} h`;
  }
  function reason(r) {
    const exact = `reason.${r}`;
    const text = EC.t(exact);
    return text === exact ? EC.t(`reason.${r.split(":")[0]}`) : text;
  }
  const isoDay = (d) => new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(d);

  // ---- filters -------------------------------------------------------------------------------
  function setRange(days) {
    const to = new Date();
    const from = new Date(to.getTime() - (days - 1) * 86400000);
    $("f-from").value = isoDay(from);
    $("f-to").value = isoDay(to);
    document.querySelectorAll(".quick button").forEach((b) => b.classList.toggle("active", Number(b.dataset.days) === days));
  }

  function query() {
    const params = new URLSearchParams({ from: $("f-from").value, to: $("f-to").value });
    if ($("f-township").value) params.set("township", $("f-township").value);
    return params.toString();
  }

  function ledgerQuery(by) {
    const params = new URLSearchParams({ month: $("ledger-month").value || $("f-to").value.slice(0, 7) });
    if ($("f-township").value) params.set("township", $("f-township").value);
    if (by) params.set("by", by);
    return params.toString();
  }

  // ---- loading -------------------------------------------------------------------------------
  async function load() {
    $("f-status").textContent = EC.t("mgr.loading");
    const q = query();
    const town = $("f-township").value ? `?township=${encodeURIComponent($("f-township").value)}` : "";
    const [summary, daily, assign, indicators, overdue, ledger] = await Promise.all([
      EC.api("GET", `/api/stats/summary?${q}`),
      EC.api("GET", `/api/stats/breakdown?by=day&${q}`),
      EC.api("GET", `/api/stats/distribution?metric=seconds_to_assign&${q}`),
      EC.api("GET", `/api/stats/indicators?${q}`),
      EC.api("GET", `/api/welfare/overdue${town}`),
      EC.api("GET", `/api/stats/ledger?${ledgerQuery()}`),
    ]);
    data = { summary, daily, assign, indicators, overdue, ledger };
    data.loadedAt = new Date().toISOString();
    render();
    document.body.dataset.ready = "1";
  }

  async function reloadLedger() {
    data.ledger = await EC.api("GET", `/api/stats/ledger?${ledgerQuery()}`);
    renderLedger();
  }

  // ---- tiles ---------------------------------------------------------------------------------
  function tile({ label, value, target, met, id }) {
    const cls = met === true ? "tile met" : met === false ? "tile missed" : "tile";
    return EC.el("div", { class: cls, dataset: { tile: id } },
      EC.el("div", { class: "label" }, label), EC.el("div", { class: "value" }, value),
      target ? EC.el("div", { class: "target" }, target) : null);
  }

  function renderIndicators() {
    $("indicator-tiles").replaceChildren(...data.indicators.indicators.map((i) => {
      const rating = i.key === "average_rating";
      const value = rating ? (i.value === null ? "—" : i.value.toFixed(2)) : pct(i.value);
      const detail = !rating && i.denominator ? ` (${num(i.numerator)}/${num(i.denominator)})` : "";
      const shown = rating ? String(i.target) : pct(i.target);
      const target = EC.t(i.higher_is_better ? "mgr.target_min" : "mgr.target_max", { v: shown });
      return tile({ id: i.key, label: EC.t(`ind.${i.key}`), value: value + detail, target, met: i.met });
    }));
  }

  function renderSummary() {
    const s = data.summary;
    $("summary-tiles").replaceChildren(
      tile({ id: "requests", label: EC.t("sum.requests"), value: num(s.requests.total) }),
      tile({ id: "completion", label: EC.t("sum.completion"), value: pct(s.completion_rate) }),
      tile({ id: "escalation", label: EC.t("sum.escalation"), value: pct(s.escalation_rate) }),
      tile({ id: "assign", label: EC.t("sum.assign"), value: `${secs(s.seconds_to_assign.p50)} / ${secs(s.seconds_to_assign.p90)}` }),
      tile({ id: "arrival", label: EC.t("sum.arrival"), value: `${secs(s.seconds_to_arrival.p50)} / ${secs(s.seconds_to_arrival.p90)}` }),
      tile({ id: "failed", label: EC.t("sum.failed"), value: num(s.failed_visits.total) }),
      tile({ id: "welfare", label: EC.t("sum.welfare"), value: num(s.welfare_checks.total) }),
      tile({ id: "ratings", label: EC.t("sum.ratings"), value: `${num(s.ratings.count)} / ${num(s.ratings.complaints)}` }),
    );
  }

  // ---- charts --------------------------------------------------------------------------------
  function chart(id, config) {
    if (charts[id]) charts[id].destroy();
    const base = { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } };
    charts[id] = new Chart($(id), { ...config, options: { ...base, ...(config.options || {}) } });
  }

  function renderCharts() {
    const rows = data.daily.rows;
    chart("chart-daily", {
      type: "line",
      data: {
        labels: rows.map((r) => r.key.slice(5)),
        datasets: [
          { label: EC.t("mgr.series.requests"), data: rows.map((r) => r.requests), borderColor: "#0b63c5", backgroundColor: "#0b63c5", pointRadius: 0, tension: 0.2 },
          { label: EC.t("mgr.series.served"), data: rows.map((r) => r.served), borderColor: "#2e7d32", backgroundColor: "#2e7d32", pointRadius: 0, tension: 0.2 },
          { label: EC.t("mgr.series.escalated"), data: rows.map((r) => r.escalations), borderColor: "#c62828", backgroundColor: "#c62828", pointRadius: 0, tension: 0.2 },
        ],
      },
      options: { scales: { y: { beginAtZero: true } } },
    });
    const towns = Object.entries(data.summary.requests.by_township);
    chart("chart-township", {
      type: "bar",
      data: { labels: towns.map(([t]) => t), datasets: [{ label: EC.t("mgr.series.count"), data: towns.map(([, n]) => n), backgroundColor: "#0b63c5" }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
    });
    const buckets = data.assign.buckets;
    let lower = 0;
    const labels = buckets.map((b) => {
      const label = b.upper_seconds === null ? EC.t("bucket.over", { v: secs(lower) }) : EC.t("bucket.le", { v: secs(b.upper_seconds) });
      lower = b.upper_seconds;
      return label;
    });
    chart("chart-assign", {
      type: "bar",
      data: { labels, datasets: [{ label: EC.t("mgr.series.count"), data: buckets.map((b) => b.count), backgroundColor: "#b26a00" }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
    });
    const kinds = Object.entries(data.summary.utilization_by_kind);
    chart("chart-utilization", {
      type: "bar",
      data: {
        labels: kinds.map(([k]) => EC.t(KIND_LABEL[k] || k)),
        datasets: [{ label: EC.t("mgr.series.utilization"), data: kinds.map(([, v]) => (v === null ? 0 : Math.round(v * 1000) / 10)), backgroundColor: ["#0b63c5", "#2e7d32", "#6a1b9a"] }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { callback: (v) => `${v}%` } } } },
    });
  }

  // ---- tables --------------------------------------------------------------------------------
  function renderOverdue() {
    const o = data.overdue;
    $("overdue-count").textContent = EC.t("mgr.overdue_count", { n: o.total });
    $("overdue-towns").replaceChildren(...Object.entries(o.by_township).map(([t, n]) => EC.el("span", { class: "chip" }, `${t} ${n}`)));
    const rows = o.elders.slice(0, 50).map((e) => EC.el("tr", { dataset: { elder: e.elder_id } },
      EC.el("td", {}, e.name), EC.el("td", {}, e.township),
      EC.el("td", { class: "reason" }, e.reasons.map(reason).join("、")),
      EC.el("td", { class: "num" }, e.overdue_days ? String(e.overdue_days) : "—"),
      EC.el("td", {}, e.last_visit_at ? EC.fmtTime(e.last_visit_at, true) : EC.t("mgr.never")),
      EC.el("td", {}, e.checks.map((c) => `#${c.request_id}`).join(" "))));
    $("overdue-body").replaceChildren(...(rows.length ? rows : [EC.el("tr", {}, EC.el("td", { colspan: 6, class: "muted" }, EC.t("mgr.none")))]));
  }

  function renderLedger() {
    const l = data.ledger;
    const t = l.totals;
    $("ledger-tiles").replaceChildren(
      tile({ id: "entitlement", label: EC.t("led.entitlement"), value: yuan(t.entitlement) }),
      tile({ id: "subsidy", label: EC.t("led.subsidy"), value: yuan(t.subsidy) }),
      tile({ id: "self_pay", label: EC.t("led.self_pay"), value: yuan(t.self_pay) }),
      tile({ id: "visits", label: EC.t("led.visits"), value: num(t.visits_drawn) }),
      tile({ id: "not_drawn", label: EC.t("led.not_drawn"), value: `${t.not_drawn.unverified}/${t.not_drawn.failed}/${t.not_drawn.deceased}` }),
    );
    $("ledger-body").replaceChildren(...l.by_township.map((g) => EC.el("tr", {},
      EC.el("td", {}, g.key), EC.el("td", { class: "num" }, num(g.elders_entitled)), EC.el("td", { class: "num" }, yuan(g.entitlement)),
      EC.el("td", { class: "num" }, yuan(g.subsidy)), EC.el("td", { class: "num" }, yuan(g.self_pay)))));
  }

  function renderQuality() {
    const rows = data.indicators.providers.slice(0, 12).map((p) => EC.el("tr", {},
      EC.el("td", {}, p.name), EC.el("td", { class: "num" }, num(p.ratings)),
      EC.el("td", { class: "num" }, p.average_rating === null ? "—" : p.average_rating.toFixed(2)),
      EC.el("td", { class: "num" }, num(p.complaints))));
    $("quality-body").replaceChildren(...(rows.length ? rows : [EC.el("tr", {}, EC.el("td", { colspan: 4, class: "muted" }, EC.t("mgr.none")))]));
  }

  function render() {
    if (!data) return;
    $("f-status").textContent = EC.t("mgr.loaded", { time: EC.fmtTime(data.loadedAt) });
    renderIndicators();
    renderSummary();
    renderCharts();
    renderOverdue();
    renderLedger();
    renderQuality();
  }

  // ---- downloads: the API needs the bearer token, so fetch, then hand the file over ----------
  async function download(path, fallbackName) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${EC.session.token}` } });
    if (!r.ok) { EC.toast(EC.t("error.generic"), "error"); return; }
    const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
    const url = URL.createObjectURL(await r.blob());
    const a = EC.el("a", { href: url, download: name ? name[1] : fallbackName });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async function boot() {
    if (!EC.requireRole("manager", "admin")) return;
    EC.header("manager.title");
    const towns = await EC.api("GET", "/api/console/townships");
    $("f-township").append(...towns.map((t) => EC.el("option", { value: t.name }, t.name)));
    setRange(30);
    // The ledger opens on the last complete month: the one a manager settles with the providers.
    const first = new Date(`${$("f-to").value.slice(0, 7)}-01T12:00:00+08:00`);
    $("ledger-month").value = isoDay(new Date(first.getTime() - 2 * 86400000)).slice(0, 7);
    $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load().catch(fail); });
    document.querySelectorAll(".quick button").forEach((b) => b.addEventListener("click", () => { setRange(Number(b.dataset.days)); load().catch(fail); }));
    $("f-township").addEventListener("change", () => load().catch(fail));
    $("ledger-month").addEventListener("change", () => reloadLedger().catch(fail));
    $("dl-requests").addEventListener("click", () => download(`/api/stats/export.csv?${query()}`, "requests.csv"));
    for (const by of ["provider", "township", "elder"]) {
      $(`dl-ledger-${by}`).addEventListener("click", () => download(`/api/stats/ledger.csv?${ledgerQuery(by)}`, `ledger-${by}.csv`));
    }
    document.addEventListener("ec:lang", render);
    await load();
  }

  function fail(exc) {
    $("f-status").textContent = "";
    EC.toast(exc.message || EC.t("error.generic"), "error");
  }

  document.addEventListener("DOMContentLoaded", () => { boot().catch(fail); });
  return { load, charts, get data() { return data; } };
})();
