/* The operator console: caller lookup (elder card or registration), intake, tabs, shortcuts.
 * The live board and the outbox are in console-board.js. A phone system can open
 * /console?phone=<number> to pop the caller's card. */
"use strict";

window.__consoleBootedAt = Date.now(); // a test checks the page is never reloaded

const ConsolePage = (() => {
  const $ = (id) => document.getElementById(id);
  const CARE = ["self_care", "partial", "full"];
  const ASSIST = ["none", "dibao", "low_income", "tekun"];
  // A home-care visit's usual needs by care level; the operator adjusts them on the call.
  const SKILLS_FOR = { self_care: ["cleaning"], partial: ["bathing"], full: ["bathing", "nursing"] };
  let townships = [];
  let elder = null;
  let pendingKey = null; // { key, body }: a retried submit of the same body reuses its key

  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "console-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  function message(exc) {
    if (Array.isArray(exc.detail)) return exc.detail.map((d) => `${(d.loc || []).slice(-1)[0] || ""}: ${d.msg}`).join("; ");
    return exc.message || EC.t("error.generic");
  }

  // ---- caller lookup -----------------------------------------------------------------------
  async function lookup(event) {
    if (event) event.preventDefault();
    const phone = $("lookup-phone").value.trim();
    if (!phone) return;
    const caller = $("caller");
    caller.replaceChildren(EC.el("p", { class: "muted" }, EC.t("board.loading")));
    try {
      const found = await EC.api("GET", `/api/elders?phone=${encodeURIComponent(phone)}`);
      if (found.length === 1) await choose(found[0]);
      else if (found.length > 1) chooser(found);
      else registerForm(phone);
    } catch (exc) {
      caller.replaceChildren(EC.el("p", { class: "error", role: "alert" }, message(exc)));
    }
  }

  function chooser(found) {
    $("caller").replaceChildren(EC.el("p", {}, EC.t("lookup.many")),
      ...found.map((e) => EC.el("div", { class: "choice" },
        EC.el("span", {}, `${e.name} · ${e.township} · ${e.address}`),
        EC.el("button", { type: "button", class: "small", onclick: () => choose(e) }, EC.t("lookup.choose")))));
    $("caller").querySelector("button").focus();
  }

  async function choose(e) {
    elder = e;
    const card = elderCard(e);
    $("caller").replaceChildren(card);
    setIntake(e);
    await recent(card);
  }

  function elderCard(e) {
    const facts = [
      e.age !== null ? EC.t("elder.age", { age: e.age }) : null,
      EC.t(`care.${e.care_level}`),
      EC.t(e.lives_alone ? "elder.lives_alone" : "elder.not_alone"),
      EC.t(`assist.${e.assistance}`),
    ].filter(Boolean);
    const family = e.family.length
      ? EC.el("ul", { class: "family" }, ...e.family.map((f) => EC.el("li", {},
        `${f.display_name || f.username}${f.relation ? `（${f.relation}）` : ""} `,
        f.phone ? EC.el("a", { href: `tel:${f.phone}` }, f.phone) : "")))
      : EC.el("p", { class: "muted" }, EC.t("elder.no_family"));
    return EC.el("article", { class: "elder-card", id: "elder-card", dataset: { elder: e.id } },
      EC.el("h3", {}, e.name, " ", EC.el("span", { class: "muted" }, facts.join(" · "))),
      EC.el("p", {}, `${e.township} · ${e.address}`),
      e.phone ? EC.el("p", {}, EC.el("a", { class: "tel", href: `tel:${e.phone}` }, `${EC.t("board.callback")} ${e.phone}`)) : null,
      e.notes ? EC.el("p", { class: "notes" }, `${EC.t("elder.notes")}：${e.notes}`) : null,
      EC.el("h4", {}, EC.t("elder.family")), family,
      EC.el("h4", {}, EC.t("elder.recent")), EC.el("ul", { class: "recent" }, EC.el("li", { class: "muted" }, EC.t("board.loading"))),
      EC.el("button", { type: "button", class: "secondary small", onclick: focusIntake }, EC.t("elder.book")));
  }

  async function recent(card) {
    const list = card.querySelector(".recent");
    const rows = await EC.api("GET", `/api/requests?elder_id=${card.dataset.elder}&limit=5`);
    list.replaceChildren(...(rows.length ? rows.map((r) => EC.el("li", { dataset: { request: r.id } },
      `#${r.id} ${EC.fmtTime(r.created_at, true)} ${EC.t(`kind.${r.kind}`)} `,
      EC.el("span", { class: `badge ${r.status}` }, EC.t(`status.${r.status}`))))
      : [EC.el("li", { class: "muted" }, EC.t("elder.no_requests"))]));
  }

  // ---- registering a new elder -------------------------------------------------------------
  function field(labelKey, input) {
    return EC.el("div", {}, EC.el("label", { for: input.id }, EC.t(labelKey)), input);
  }

  function select(id, values, prefix, value) {
    return EC.el("select", { id, name: id.replace("reg-", "") },
      ...values.map((v) => EC.el("option", { value: v, selected: v === value }, prefix ? EC.t(`${prefix}.${v}`) : v)));
  }

  function registerForm(phone) {
    const first = townships[0];
    const lat = EC.el("input", { id: "reg-lat", type: "number", step: "0.000001", required: true, value: first.lat });
    const lon = EC.el("input", { id: "reg-lon", type: "number", step: "0.000001", required: true, value: first.lon });
    const township = select("reg-township", townships.map((t) => t.name), null, first.name);
    township.addEventListener("change", () => {
      const t = townships.find((x) => x.name === township.value);
      lat.value = t.lat; lon.value = t.lon;
    });
    const form = EC.el("form", { id: "register-form", class: "register" },
      EC.el("p", { class: "muted" }, EC.t("lookup.none")),
      EC.el("h3", {}, EC.t("register.title")),
      EC.el("div", { class: "grid2" },
        field("register.name", EC.el("input", { id: "reg-name", required: true, maxlength: 100 })),
        field("register.phone", EC.el("input", { id: "reg-phone", type: "tel", value: phone, maxlength: 32 })),
        field("register.township", township),
        field("register.birth", EC.el("input", { id: "reg-birth", type: "date" }))),
      field("register.address", EC.el("input", { id: "reg-address", maxlength: 200 })),
      EC.el("div", {}, EC.el("label", { for: "reg-lat" }, EC.t("register.coords")), EC.el("div", { class: "row" }, lat, lon)),
      EC.el("div", { class: "grid2" },
        field("register.care", select("reg-care", CARE, "care", "self_care")),
        field("register.assist", select("reg-assist", ASSIST, "assist", "none"))),
      EC.el("div", { class: "check" }, EC.el("input", { id: "reg-alone", type: "checkbox" }), EC.el("label", { for: "reg-alone" }, EC.t("register.alone"))),
      EC.el("div", { class: "error", role: "alert", id: "reg-error" }),
      EC.el("button", { type: "submit", id: "reg-submit" }, EC.t("register.submit")));
    form.addEventListener("submit", register);
    enterSubmits(form);
    $("caller").replaceChildren(form);
    $("reg-name").focus();
  }

  async function register(event) {
    event.preventDefault();
    const body = {
      name: $("reg-name").value.trim(), township: $("reg-township").value, address: $("reg-address").value.trim(),
      lat: Number($("reg-lat").value), lon: Number($("reg-lon").value), care_level: $("reg-care").value,
      assistance: $("reg-assist").value, lives_alone: $("reg-alone").checked,
    };
    if ($("reg-phone").value.trim()) body.phone = $("reg-phone").value.trim();
    if ($("reg-birth").value) body.birth_date = $("reg-birth").value;
    try {
      const created = await EC.api("POST", "/api/elders", body);
      EC.toast(EC.t("register.done", { name: created.name }), "ok");
      await choose(created);
      focusIntake();
    } catch (exc) {
      $("reg-error").textContent = message(exc);
    }
  }

  // ---- intake ------------------------------------------------------------------------------
  function setIntake(e) {
    const label = $("intake-for");
    delete label.dataset.i18n;
    label.textContent = EC.t("intake.for", { name: e.name });
    $("intake-form").hidden = false;
    $("intake-kind").value = "meal";
    $("intake-slot").value = "lunch";
    $("intake-delivery").checked = e.care_level === "partial" || e.care_level === "full";
    const skills = SKILLS_FOR[e.care_level] || [];
    document.querySelectorAll("#intake-skills input").forEach((box) => { box.checked = skills.includes(box.value); });
    $("intake-priority").value = "normal";
    $("intake-note").value = "";
    pendingKey = null;
    kindChanged();
  }

  function kindChanged() {
    const kind = $("intake-kind").value;
    $("intake-meal").hidden = kind !== "meal";
    $("intake-skills").hidden = kind !== "home_care";
    const priority = $("intake-priority");
    priority.disabled = kind === "emergency";
    if (kind === "emergency") priority.value = "urgent";
  }

  function intakeBody() {
    const kind = $("intake-kind").value;
    const body = { elder_id: elder.id, kind, priority: $("intake-priority").value, channel: "hotline", note: $("intake-note").value.trim() };
    if (kind === "meal") body.details = { slot: $("intake-slot").value, delivery: $("intake-delivery").checked };
    if (kind === "home_care") body.details = { skills: [...document.querySelectorAll("#intake-skills input:checked")].map((b) => b.value) };
    return body;
  }

  async function submitIntake(event) {
    event.preventDefault();
    if (!elder) return;
    const body = intakeBody();
    const text = JSON.stringify(body);
    if (!pendingKey || pendingKey.body !== text) pendingKey = { key: newKey(), body: text };
    const button = $("intake-submit");
    button.disabled = true;
    try {
      const read = await EC.api("POST", "/api/requests", body, { headers: { "Idempotency-Key": pendingKey.key } });
      pendingKey = null;
      ConsoleBoard.prime(read);
      EC.toast(EC.t("intake.done", { id: read.id }), "ok");
      $("intake-note").value = "";
      const card = $("elder-card");
      if (card) recent(card).catch(() => {});
    } catch (exc) {
      EC.toast(message(exc), "error");
    } finally {
      button.disabled = false;
    }
  }

  /** Enter submits from any field but a textarea (Ctrl+Enter there) or a button. */
  function enterSubmits(form) {
    form.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter" || ev.isComposing) return;
      const tag = ev.target.tagName;
      if (tag === "BUTTON" || tag === "A" || (tag === "TEXTAREA" && !ev.ctrlKey)) return;
      ev.preventDefault();
      form.requestSubmit();
    });
  }

  // ---- tabs and shortcuts ------------------------------------------------------------------
  function showTab(name) {
    for (const tab of ["board", "outbox"]) {
      $(`${tab}-panel`).hidden = tab !== name;
      $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    }
    if (name === "outbox") ConsoleOutbox.refresh().catch(() => {});
    $(`tab-${name}`).focus();
  }

  function focusLookup() { const input = $("lookup-phone"); input.focus(); input.select(); }
  function focusIntake() { if ($("intake-form").hidden) focusLookup(); else $("intake-kind").focus(); }

  const SHORTCUTS = {
    "/": focusLookup,
    n: focusIntake,
    b: () => showTab("board"),
    o: () => showTab("outbox"),
    e: () => { showTab("board"); const b = document.querySelector("#escalation-list button"); if (b) b.focus(); },
    f: () => { showTab("board"); $("filter-status").focus(); },
    "?": () => $("help-dialog").showModal(),
  };

  function onKey(ev) {
    if (ev.key === "F2") { ev.preventDefault(); focusLookup(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || document.querySelector("dialog[open]")) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    const action = SHORTCUTS[ev.key.length === 1 ? ev.key.toLowerCase() : ev.key] || SHORTCUTS[ev.key];
    if (!action) return;
    ev.preventDefault();
    action();
  }

  async function boot() {
    if (!EC.requireRole("operator", "admin")) return;
    EC.header("console.title");
    $("lookup-form").addEventListener("submit", lookup);
    $("intake-form").addEventListener("submit", submitIntake);
    $("intake-kind").addEventListener("change", kindChanged);
    enterSubmits($("intake-form"));
    $("tab-board").addEventListener("click", () => showTab("board"));
    $("tab-outbox").addEventListener("click", () => showTab("outbox"));
    $("help-open").addEventListener("click", () => $("help-dialog").showModal());
    document.addEventListener("keydown", onKey);
    document.addEventListener("ec:lang", () => { if (elder) $("intake-for").textContent = EC.t("intake.for", { name: elder.name }); });
    townships = await ConsoleBoard.start();
    ConsoleOutbox.start();
    const phone = new URLSearchParams(location.search).get("phone");
    if (phone) { $("lookup-phone").value = phone; await lookup(); } else focusLookup();
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", () => { boot().catch((exc) => EC.toast(message(exc), "error")); });
  return { lookup, choose, showTab };
})();
