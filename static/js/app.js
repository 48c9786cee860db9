// Site-wide behaviour. Feed-specific code lives in feed.js.
"use strict";
(function () {
  window.ForYou = window.ForYou || {};
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  window.ForYou.csrf = () => (csrfMeta ? csrfMeta.content : "");
  window.ForYou.toast = function (message, ms) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;
    clearTimeout(el._timer);
    el._timer = setTimeout(() => { el.textContent = ""; }, ms || 2200);
  };
})();
