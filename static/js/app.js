// Site-wide behaviour. Feed-specific code lives in feed.js.
//   - confirmations: a button or form with data-confirm="question?" asks before it acts (the CSP forbids
//     inline handlers, so this is the one place that does it);
//   - htmx errors: a 4xx answer that carries HTML (a form with its error, an error fragment) is swapped in
//     place like a 2xx one, so a failed login or a taken username shows its message where the form is;
//   - the toast: a one-line notice at the bottom that clears itself.
"use strict";
(function () {
  const FY = (window.ForYou = window.ForYou || {});
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  FY.csrf = () => (csrfMeta ? csrfMeta.content : "");
  FY.toast = function (message, ms) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message || "";
    clearTimeout(el._timer);
    el._timer = setTimeout(() => { el.textContent = ""; }, ms || 2200);
  };

  function showNotice() {
    const el = document.getElementById("toast");
    if (el && el.textContent.trim()) FY.toast(el.textContent.trim(), 5000); // a notice the page came with
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showNotice);
  else showNotice();

  // ---- confirmations -------------------------------------------------------------------------------------
  function confirmed(el) {
    const question = el && el.getAttribute("data-confirm");
    return !question || window.confirm(question);
  }
  document.addEventListener("click", (e) => {
    const el = e.target instanceof Element ? e.target.closest("[data-confirm]") : null;
    if (el && el.tagName !== "FORM" && !confirmed(el)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form instanceof HTMLFormElement && form.hasAttribute("data-confirm") && !confirmed(form)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);

  // ---- htmx: swap 4xx HTML in place -------------------------------------------------------------------------
  document.addEventListener("htmx:beforeSwap", (e) => {
    const xhr = e.detail.xhr;
    if (!xhr || xhr.status < 400 || xhr.status >= 500) return;
    const type = xhr.getResponseHeader("content-type") || "";
    if (type.indexOf("text/html") === 0) {
      e.detail.shouldSwap = !!xhr.responseText;
      e.detail.isError = false; // handled: shown in place, not an error in the console
    }
  });
  document.addEventListener("htmx:afterSwap", (e) => {
    const target = e.detail && e.detail.target;
    if (target && target.id === "toast") FY.toast(target.textContent.trim(), 4000);
  });
})();
