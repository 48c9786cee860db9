// Site-wide behaviour. Feed-specific code lives in feed.js.
//   - confirmations: a button or form with data-confirm="question?" asks before it acts (the CSP forbids
//     inline handlers, so this is the one place that does it);
//   - htmx errors: a 4xx answer that carries HTML (a form with its error, an error fragment) is swapped in
//     place like a 2xx one, so a failed login or a taken username shows its message where the form is;
//   - the toast: a one-line notice at the bottom that clears itself;
//   - the sign-in sheet: a guest's save/follow/comment/report is answered with a sign-in form in #auth-sheet
//     and a foryou:auth-sheet event naming the request; once signed in (foryou:signed-in, with the new CSRF
//     token) the sheet closes and the same request is sent again from the same element, so the page (the
//     feed's card and scroll) stays where it was and the action is carried out;
//   - comment replies: "Reply" points the comment form at the top-level comment.
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

  // ---- follower counts: a follow's answer (foryou:follow) updates every count of that creator on the page ----
  function compact(n) {
    const units = [["M", 1e6], ["K", 1e3]];
    for (const [unit, size] of units) if (n >= size) return (n / size).toFixed(1).replace(/\.0$/, "") + unit;
    return String(Math.trunc(n || 0));
  }
  document.addEventListener("foryou:follow", (e) => {
    const d = e.detail || {};
    if (!d.creator_id || typeof d.followers !== "number") return;
    document.querySelectorAll('[data-followers-of="' + CSS.escape(d.creator_id) + '"]').forEach((el) => {
      el.textContent = compact(d.followers);
    });
  });

  // ---- the sign-in sheet ------------------------------------------------------------------------------------
  let pending = null; // {elt, method, path}: the request a guest made that needs an account
  let opener = null;
  const sheet = () => document.getElementById("auth-sheet");
  const isOpen = () => { const el = sheet(); return !!(el && !el.hidden); };
  const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), textarea, select";

  function openSheet() {
    const el = sheet();
    if (!el) return;
    el.hidden = false;
    document.body.classList.add("auth-open");
    requestAnimationFrame(() => el.classList.add("open"));
    const first = el.querySelector("input:not([type=hidden])") || el.querySelector(FOCUSABLE);
    if (first) first.focus({ preventScroll: true });
  }
  function closeSheet(keepPending) {
    const el = sheet();
    if (!el || el.hidden) return;
    el.classList.remove("open");
    el.hidden = true;
    el.innerHTML = "";
    document.body.classList.remove("auth-open");
    if (!keepPending) pending = null;
    if (opener && opener.isConnected) opener.focus({ preventScroll: true });
    opener = null;
  }
  FY.closeAuthSheet = closeSheet;

  document.addEventListener("foryou:auth-sheet", (e) => {
    const d = e.detail || {};
    pending = { elt: e.target, method: d.method || "POST", path: d.path };
    opener = document.activeElement;
  });
  document.addEventListener("htmx:afterSwap", (e) => {
    const target = e.detail && e.detail.target;
    if (target && target.id === "auth-sheet") openSheet();
    else if (target && isOpen() && sheet().contains(target)) {
      const input = sheet().querySelector(".form-error") ? sheet().querySelector("input[name=password]")
        : sheet().querySelector("input:not([type=hidden])");
      if (input) input.focus({ preventScroll: true });
    }
  });
  document.addEventListener("foryou:signed-in", (e) => {
    const d = e.detail || {};
    if (d.csrf) {
      if (csrfMeta) csrfMeta.content = d.csrf;
      document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRF-Token": d.csrf }));
      document.querySelectorAll("input[name=csrf_token]").forEach((input) => { input.value = d.csrf; });
    }
    document.body.classList.add("signed-in");
    const todo = pending;
    pending = null;
    closeSheet(true);
    FY.toast(d.username ? "Signed in as @" + d.username : "Signed in");
    if (todo && todo.path && todo.elt && todo.elt.isConnected && window.htmx) {
      window.htmx.ajax(todo.method, todo.path, { source: todo.elt });
    }
  });
  document.addEventListener("click", (e) => {
    const t = e.target instanceof Element ? e.target : null;
    if (!t || !isOpen()) return;
    if (t === sheet() || t.closest("[data-action='close-auth']")) {
      e.preventDefault();
      closeSheet(false);
    }
  });
  // While the sheet is open it owns the keyboard: Escape closes it, Tab goes round its controls, and no other
  // key reaches the feed's shortcuts (the listener runs first, in the capture phase on window).
  window.addEventListener("keydown", (e) => {
    if (!isOpen()) return;
    e.stopPropagation();
    if (e.key === "Escape") {
      e.preventDefault();
      closeSheet(false);
    } else if (e.key === "Tab") {
      const items = Array.from(sheet().querySelectorAll(FOCUSABLE)).filter((el) => el.offsetParent !== null);
      if (!items.length) return;
      const first = items[0], last = items[items.length - 1];
      const inside = sheet().contains(document.activeElement);
      if (e.shiftKey && (document.activeElement === first || !inside)) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && (document.activeElement === last || !inside)) { e.preventDefault(); first.focus(); }
    }
  }, true);

  // ---- comment replies ------------------------------------------------------------------------------------
  document.addEventListener("click", (e) => {
    const el = e.target instanceof Element ? e.target.closest("[data-action='reply'], [data-action='cancel-reply']") : null;
    if (!el) return;
    const form = document.querySelector("#comments-body .comment-form") || document.querySelector(".comment-form");
    if (!form) return;
    const parent = form.querySelector("input[name=parent_id]");
    const note = form.querySelector(".replying-to");
    const text = form.querySelector("input[name=text]");
    if (el.dataset.action === "reply") {
      parent.value = el.dataset.replyTo || "";
      const handle = el.dataset.replyHandle;
      if (note) { note.hidden = false; note.querySelector("span").textContent = "Replying to " + (handle ? "@" + handle : "a comment"); }
      if (text) {
        if (handle && !text.value) text.value = "@" + handle + " ";
        text.focus();
      }
    } else {
      parent.value = "";
      if (note) note.hidden = true;
      if (text) text.focus();
    }
  });
})();
