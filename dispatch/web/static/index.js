/* Sign-in: then each role goes to its own page. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("signin-form");
  const error = document.getElementById("signin-error");
  document.getElementById("lang-toggle").addEventListener("click", EC.toggleLang);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    delete error.dataset.i18n;
    error.textContent = "";
    try {
      const role = await EC.signIn(form.username.value.trim(), form.password.value);
      location.href = EC.PAGE_FOR_ROLE[role] || "/";
    } catch (exc) {
      error.dataset.i18n = exc.status === 429 ? "signin.throttled" : "signin.failed";
      error.textContent = EC.t(error.dataset.i18n);  // data-i18n: follows a language switch
    }
  });
});
