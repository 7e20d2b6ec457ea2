/* Shared by every page: translations (Simplified Chinese first, English switchable), sign-in
 * state, the API client, the live event stream with resume by seq, and small DOM helpers.
 * Plain script, no build step, no CDN. Pages add their own strings with EC.addStrings(). */
"use strict";

const EC = (() => {
  const STRINGS = {
    zh: {
      "app.title": "静海区养老服务调度平台",
      "app.lang": "English",
      "signin.title": "登录",
      "signin.username": "用户名",
      "signin.password": "密码",
      "signin.submit": "登录",
      "signin.failed": "用户名或密码错误",
      "signin.throttled": "登录失败次数过多，请稍后再试",
      "signin.no_page": "该角色暂无页面",
      "nav.signout": "退出",
      "live.down": "实时连接已断开，正在重连…",
      "live.up": "实时连接正常",
      "error.generic": "操作失败",
      "kind.meal": "助餐",
      "kind.day_care": "日间照料",
      "kind.home_care": "居家照护",
      "kind.visit": "探访",
      "kind.emergency": "紧急求助",
      "status.queued": "待派单",
      "status.offered": "已派单待接",
      "status.assigned": "已接单",
      "status.in_service": "服务中",
      "status.completed": "已完成",
      "status.escalated": "需人工处理",
      "status.cancelled": "已取消",
      "priority.normal": "普通",
      "priority.high": "优先",
      "priority.urgent": "紧急",
      "role.admin": "管理员",
      "role.manager": "管理人员",
      "role.operator": "调度员",
      "role.provider": "服务机构",
      "role.family": "家属",
    },
    en: {
      "app.title": "Jinghai Elderly-Care Dispatch",
      "app.lang": "中文",
      "signin.title": "Sign in",
      "signin.username": "Username",
      "signin.password": "Password",
      "signin.submit": "Sign in",
      "signin.failed": "Wrong username or password",
      "signin.throttled": "Too many failed sign-ins; try again later",
      "signin.no_page": "No page for this role yet",
      "nav.signout": "Sign out",
      "live.down": "Live connection lost, reconnecting…",
      "live.up": "Live connection OK",
      "error.generic": "Something went wrong",
      "kind.meal": "Meal",
      "kind.day_care": "Day care",
      "kind.home_care": "Home care",
      "kind.visit": "Visit",
      "kind.emergency": "Emergency",
      "status.queued": "Queued",
      "status.offered": "Offered",
      "status.assigned": "Assigned",
      "status.in_service": "In service",
      "status.completed": "Completed",
      "status.escalated": "Needs operator",
      "status.cancelled": "Cancelled",
      "priority.normal": "Normal",
      "priority.high": "High",
      "priority.urgent": "Urgent",
      "role.admin": "Admin",
      "role.manager": "Manager",
      "role.operator": "Operator",
      "role.provider": "Provider",
      "role.family": "Family",
    },
  };
  const PAGE_FOR_ROLE = { admin: "/console", operator: "/console", provider: "/provider", family: "/family", manager: "/manager" };
  const TZ = "Asia/Shanghai";

  let lang = localStorage.getItem("ec.lang") === "en" ? "en" : "zh";

  function addStrings(more) {
    for (const l of Object.keys(more)) Object.assign(STRINGS[l] = STRINGS[l] || {}, more[l]);
    applyI18n();
  }

  function t(key, vars) {
    let text = (STRINGS[lang] && STRINGS[lang][key]) || (STRINGS.zh[key]) || key;
    if (vars) for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, String(v));
    return text;
  }

  function applyI18n(root = document) {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    root.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    root.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
    root.querySelectorAll("[data-i18n-title]").forEach((n) => { n.title = t(n.dataset.i18nTitle); });
  }

  function setLang(next) {
    lang = next === "en" ? "en" : "zh";
    localStorage.setItem("ec.lang", lang);
    applyI18n();
    document.dispatchEvent(new CustomEvent("ec:lang", { detail: lang }));
  }

  function toggleLang() { setLang(lang === "zh" ? "en" : "zh"); }

  // ---- sign-in state (per browser tab) ----
  const session = {
    get token() { return sessionStorage.getItem("ec.token"); },
    get role() { return sessionStorage.getItem("ec.role"); },
    get username() { return sessionStorage.getItem("ec.username"); },
  };

  class ApiError extends Error {
    constructor(status, detail) { super(typeof detail === "string" ? detail : JSON.stringify(detail)); this.status = status; this.detail = detail; }
  }

  async function signIn(username, password) {
    const body = new URLSearchParams({ username, password });
    const r = await fetch("/api/auth/token", { method: "POST", body });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new ApiError(r.status, data.detail);
    sessionStorage.setItem("ec.token", data.access_token);
    sessionStorage.setItem("ec.role", data.role);
    sessionStorage.setItem("ec.username", username);
    return data.role;
  }

  function signOut() {
    ["ec.token", "ec.role", "ec.username"].forEach((k) => sessionStorage.removeItem(k));
    location.href = "/";
  }

  /** Stay on this page only when signed in with one of `roles`. */
  function requireRole(...roles) {
    if (!session.token || !roles.includes(session.role)) { location.href = "/"; return false; }
    return true;
  }

  async function api(method, path, body, { headers = {} } = {}) {
    const init = { method, headers: { Authorization: `Bearer ${session.token}`, ...headers } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const r = await fetch(path, init);
    if (r.status === 401) { signOut(); throw new ApiError(401, "signed out"); }
    const isJson = (r.headers.get("content-type") || "").includes("json");
    const data = isJson ? await r.json() : await r.text();
    if (!r.ok) throw new ApiError(r.status, isJson ? data.detail : data);
    return data;
  }

  /**
   * The live event stream. Calls onEvent(frame) for every event in order, exactly once per
   * page load: after a drop (server restart, network) it reconnects with since=<last seq>.
   * onStatus("up" | "down") drives the connection banner.
   */
  function live({ onEvent, onStatus = () => {}, since = 0 }) {
    let lastSeq = since;
    let delay = 500;
    let socket = null;
    let stopped = false;
    const scheme = location.protocol === "https:" ? "wss" : "ws";

    function connect() {
      if (stopped) return;
      socket = new WebSocket(`${scheme}://${location.host}/ws/events?token=${encodeURIComponent(session.token)}&since=${lastSeq}`);
      socket.onopen = () => { delay = 500; onStatus("up"); };
      socket.onmessage = (msg) => {
        const frame = JSON.parse(msg.data);
        if (frame.seq <= lastSeq) return;
        lastSeq = frame.seq;
        onEvent(frame);
      };
      socket.onclose = (ev) => {
        onStatus("down");
        if (ev.code === 1008) { signOut(); return; }
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 5000);
      };
    }
    connect();
    return {
      get lastSeq() { return lastSeq; },
      stop() { stopped = true; if (socket) socket.close(); },
    };
  }

  // ---- formatting and DOM ----
  function fmtTime(iso, withDate = false) {
    if (!iso) return "";
    const opts = { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) Object.assign(opts, { month: "2-digit", day: "2-digit" });
    return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", opts).format(new Date(iso));
  }

  function fmtAge(iso) {
    const s = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 1000));
    const m = Math.floor(s / 60);
    return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m` : `${m}:${String(s % 60).padStart(2, "0")}`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  /** The header every page shows: title, who is signed in, language switch, sign-out. */
  function header(titleKey) {
    const bar = el("header", { class: "ec-header" },
      el("h1", { "data-i18n": titleKey }, t(titleKey)),
      el("span", { class: "ec-who" }, session.username ? `${session.username} · ${t("role." + session.role)}` : ""),
      el("button", { type: "button", class: "ec-link", id: "ec-lang", onclick: toggleLang, "data-i18n": "app.lang" }, t("app.lang")),
      session.token ? el("button", { type: "button", class: "ec-link", id: "ec-signout", onclick: signOut, "data-i18n": "nav.signout" }, t("nav.signout")) : null,
    );
    document.body.prepend(bar);
    return bar;
  }

  /** A banner that shows while the live connection is down. */
  function liveBanner() {
    const banner = el("div", { class: "ec-banner ec-hidden", id: "ec-live-banner", role: "status", "data-i18n": "live.down" }, t("live.down"));
    document.body.prepend(banner);
    return (state) => banner.classList.toggle("ec-hidden", state === "up");
  }

  function toast(message, kind = "info") {
    const node = el("div", { class: `ec-toast ec-toast-${kind}`, role: "alert" }, message);
    document.body.append(node);
    setTimeout(() => node.remove(), 4000);
  }

  document.addEventListener("DOMContentLoaded", () => applyI18n());

  return {
    t, addStrings, applyI18n, setLang, toggleLang, get lang() { return lang; },
    session, signIn, signOut, requireRole, api, ApiError, live,
    fmtTime, fmtAge, el, header, liveBanner, toast, PAGE_FOR_ROLE,
  };
})();
