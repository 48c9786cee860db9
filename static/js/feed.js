// The swipe player: one video plays at a time, one card per swipe, watch-time events, card actions.
//
//   Outbox    - events waiting for the server (localStorage-backed): sendBeacon on swipe-away and page hide,
//               fetch every 5 s; an event leaves the outbox only when a fetch got 202 for it. Event ids are
//               client-made and the server dedupes them (a view's watch time merges with max), so sending
//               one twice is harmless and a failed send is retried, never lost silently.
//   CardView  - one viewing of one card: real playing time (sum of currentTime advances, loops included),
//               completion (first time the end is reached), replays (each further full pass), skip.
//   Feed      - the player: IntersectionObserver picks the active card; keyboard, wheel, touch and the
//               up/down buttons move exactly one card; mute and captions are global and remembered;
//               the next video is preloaded; htmx loads more cards before the end.
//   Actions   - tap to pause, double-tap to like, share, comments drawer, the "more" sheet, removal of
//               hidden/reported cards, follow state kept in step across cards.
// Every handler runs inside guard(): an error in one card's handler is logged, not fatal to the page.
"use strict";
(function () {
  const FY = (window.ForYou = window.ForYou || {});
  const KEYS = { muted: "foryou.muted", captions: "foryou.captions", outbox: "foryou.outbox", volume: "foryou.volume" };
  const FLUSH_EVERY_MS = 5000;
  const DOUBLE_TAP_MS = 300;
  const reduceMotion = !!(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);

  const store = {
    get(key, fallback) {
      try {
        const raw = window.localStorage.getItem(key);
        return raw === null ? fallback : JSON.parse(raw);
      } catch (err) {
        return fallback;
      }
    },
    set(key, value) {
      try {
        window.localStorage.setItem(key, JSON.stringify(value));
        return true;
      } catch (err) {
        return false;
      }
    },
  };

  function guard(name, fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (err) {
        console.error("[feed] " + name + " failed:", err);
        return undefined;
      }
    };
  }

  function uid() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID().replace(/-/g, "");
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const round = (x) => Math.round(x * 1000) / 1000;
  const toast = (message, ms) => FY.toast && FY.toast(message, ms);
  const csrf = () => (FY.csrf ? FY.csrf() : "");

  // ---- Outbox ---------------------------------------------------------------------------------------
  const Outbox = {
    URL: "/api/events",
    MAX: 500,
    CHUNK: 100,
    items: new Map(), // event_id -> event, oldest first
    sending: false,
    pausedUntil: 0, // after a 429 the server said when to come back (Retry-After); the events stay here
    stats: { beacons: 0, beaconFailures: 0, posts: 0, postFailures: 0 },

    load() {
      const saved = store.get(KEYS.outbox, []);
      if (Array.isArray(saved)) saved.forEach((ev) => ev && ev.event_id && this.items.set(ev.event_id, ev));
    },
    save() {
      let list = Array.from(this.items.values());
      if (list.length > this.MAX) {
        list = list.slice(-this.MAX);
        this.items = new Map(list.map((ev) => [ev.event_id, ev]));
      }
      store.set(KEYS.outbox, list);
    },
    put(ev) {
      const prev = this.items.get(ev.event_id);
      if (prev) {
        if ((prev.watch_duration || 0) > (ev.watch_duration || 0)) ev.watch_duration = prev.watch_duration;
        if (prev.info && prev.info.final) ev.info = Object.assign({}, ev.info, { final: true });
        this.items.delete(ev.event_id);
      }
      this.items.set(ev.event_id, ev);
      this.save();
    },
    chunks() {
      const list = Array.from(this.items.values());
      const out = [];
      for (let i = 0; i < list.length; i += this.CHUNK) out.push(list.slice(i, i + this.CHUNK));
      return out;
    },
    body(events) {
      return JSON.stringify({ csrf: csrf(), events: events });
    },
    // The fast path (swipe-away, page hidden): the browser delivers a beacon even while the page goes away.
    // The events stay in the outbox until a later fetch confirms them.
    beacon() {
      if (!this.items.size || Date.now() < this.pausedUntil) return;
      for (const chunk of this.chunks()) {
        let queued = false;
        try {
          const blob = new Blob([this.body(chunk)], { type: "text/plain;charset=UTF-8" });
          queued = !!(navigator.sendBeacon && navigator.sendBeacon(this.URL, blob));
        } catch (err) {
          queued = false;
        }
        if (queued) this.stats.beacons += 1;
        else {
          this.stats.beaconFailures += 1;
          this.send(chunk, true); // fetch with keepalive; on failure the events simply stay in the outbox
        }
      }
    },
    // Confirmed delivery: whatever is in the outbox is posted; what the server acknowledged leaves it.
    async flush() {
      if (this.sending || !this.items.size || Date.now() < this.pausedUntil) return;
      this.sending = true;
      try {
        for (const chunk of this.chunks()) {
          if (!(await this.send(chunk, false))) break;
        }
      } finally {
        this.sending = false;
      }
    },
    async send(chunk, keepalive) {
      const sent = chunk.map((ev) => [ev.event_id, ev.watch_duration, !!(ev.info && ev.info.final)]);
      let response;
      try {
        response = await fetch(this.URL, {
          method: "POST", body: this.body(chunk), keepalive: !!keepalive, credentials: "same-origin",
          headers: { "content-type": "text/plain;charset=UTF-8" },
        });
      } catch (err) {
        this.stats.postFailures += 1;
        return false; // offline or the server is away: retried on the next flush
      }
      if (response.status === 422 && chunk.length > 1) {
        // One bad event (say, a video deleted meanwhile) must not block the others: one by one.
        for (const ev of chunk) await this.send([ev], keepalive);
        return true;
      }
      if (response.status === 202 || response.status === 422) {
        this.backoff = 0;
        if (response.status === 422) console.warn("[feed] event dropped by the server", chunk[0]);
        this.stats.posts += 1;
        for (const [id, watch, final] of sent) {
          const current = this.items.get(id);
          const unchanged = current && current.watch_duration === watch && !!(current.info && current.info.final) === final;
          if (unchanged) this.items.delete(id);
        }
        this.save();
        return true;
      }
      this.stats.postFailures += 1;
      if (response.status === 429 || response.status === 503) {
        // Slowed down (or the server is short of disk): wait as long as it asks, at least 5 s, doubling
        // while it keeps refusing; the events stay in the outbox.
        const asked = parseInt(response.headers.get("retry-after") || "0", 10) * 1000;
        this.backoff = Math.min(Math.max(5000, (this.backoff || 2500) * 2, asked), 300000);
        this.pausedUntil = Date.now() + this.backoff;
        return false;
      }
      return false; // 403 (stale CSRF token), 5xx: kept and retried
    },
  };

  // ---- CardView ---------------------------------------------------------------------------------------
  class CardView {
    constructor(card, feed) {
      this.card = card;
      this.feed = feed;
      this.video = card.querySelector("video.player");
      this.id = "vw" + uid().slice(0, 30);
      this.watched = 0;
      this.last = this.video ? this.video.currentTime : null; // playing time is counted from here
      this.lastWall = performance.now();
      this.passes = 0;
      this.done = false;
    }
    get videoId() {
      return this.card.dataset.videoId;
    }
    get duration() {
      const d = this.video && this.video.duration;
      if (d && isFinite(d) && d > 0) return d;
      return parseFloat(this.card.dataset.duration) || 0;
    }
    info(extra) {
      const d = this.card.dataset;
      const info = {
        position: parseInt(d.position || "0", 10) || 0, source: d.source || "", feed: d.feed || "",
        request_id: d.requestId || "", video_duration: round(this.duration),
      };
      return Object.assign(info, extra || {});
    }
    // Called on every timeupdate and whenever an up-to-date figure is needed.
    sample() {
      const v = this.video;
      if (!v || this.done) return;
      const t = v.currentTime;
      const now = performance.now();
      if (this.last === null) {
        this.last = t;
        this.lastWall = now;
        return;
      }
      // Never count more than the wall clock allows (a seek is not watching).
      const wall = ((now - this.lastWall) / 1000) * (v.playbackRate || 1) + 0.35;
      const d = this.duration;
      let delta = t - this.last;
      if (delta < -0.5 && d && this.last > d - 1.5) {
        delta = d - this.last + t; // wrapped around: the loop reached the end
        this.passCompleted();
      } else if (delta < 0) {
        delta = 0;
      }
      this.watched += Math.min(delta, wall);
      this.last = t;
      this.lastWall = now;
    }
    passCompleted() {
      this.passes += 1;
      if (this.passes === 1) {
        Outbox.put({ event_id: this.id + "c", type: "complete_view", video_id: this.videoId,
                     watch_duration: round(this.watched + Math.max(0, this.duration - this.last)), info: this.info() });
      } else {
        Outbox.put({ event_id: this.id + "r" + (this.passes - 1), type: "replay", video_id: this.videoId,
                     info: this.info({ replays: this.passes - 1 }) });
      }
    }
    viewEvent(final) {
      const d = this.duration;
      return {
        event_id: this.id, type: "view", video_id: this.videoId, watch_duration: round(this.watched),
        info: this.info({ watch_ratio: d ? round(this.watched / d) : 0, replays: Math.max(0, this.passes - 1),
                          final: !!final, client_ts: Date.now() }),
      };
    }
    // Leaving before 2 s is a skip; on a clip shorter than 6 s, leaving before a third of it (settings).
    skipThreshold() {
      const d = this.duration;
      return d > 0 && d < this.feed.skipShortClip ? this.feed.skipRatio * d : this.feed.skipSeconds;
    }
    // The periodic flush: the growing view, not final yet.
    snapshot() {
      this.sample();
      if (this.watched > 0 && !this.done) Outbox.put(this.viewEvent(false));
    }
    // The card is left: "swipe" (moved away: may be a skip), "hidden" (page hidden), "removed" (not interested).
    finish(reason) {
      if (this.done) return;
      this.sample();
      this.done = true;
      if (this.watched > 0) Outbox.put(this.viewEvent(true));
      if (reason === "swipe" && this.watched < this.skipThreshold()) {
        Outbox.put({ event_id: this.id + "s", type: "skip", video_id: this.videoId, watch_duration: round(this.watched),
                     info: this.info() });
      }
    }
  }

  // ---- Feed -----------------------------------------------------------------------------------------
  const Feed = {
    root: null,
    active: null,
    view: null,
    io: null,
    muted: true,
    captions: false,
    wheel: { acc: 0, last: 0, lockUntil: 0 },
    touch: null,
    suppressTapUntil: 0,
    lastTap: null,
    tapTimer: 0,
    drawerOpener: null,

    init(root) {
      this.root = root;
      this.skipSeconds = parseFloat(root.dataset.skipThresholdS) || 2;
      this.skipRatio = parseFloat(root.dataset.skipThresholdRatio) || 1 / 3;
      this.skipShortClip = parseFloat(root.dataset.skipShortClipS) || 6;
      this.watchOnboarding();
      this.muted = store.get(KEYS.muted, true) !== false;
      this.volume = Math.min(1, Math.max(0, Number(store.get(KEYS.volume, 1)) || 0));
      this.captions = store.get(KEYS.captions, false) === true;
      this.io = new IntersectionObserver(guard("intersection", (entries) => this.onIntersect(entries)),
                                         { root: root, threshold: [0, 0.6] });
      this.cards().forEach((card) => this.register(card));
      root.addEventListener("wheel", guard("wheel", (e) => this.onWheel(e)), { passive: false });
      root.addEventListener("touchstart", guard("touchstart", (e) => this.onTouchStart(e)), { passive: true });
      root.addEventListener("touchmove", guard("touchmove", (e) => this.onTouchMove(e)), { passive: false });
      root.addEventListener("touchend", guard("touchend", (e) => this.onTouchEnd(e)), { passive: true });
      document.body.classList.toggle("is-muted", this.muted);
      if (root.dataset.openComments) {
        const button = root.querySelector(".card [data-action='comments']");
        if (button) setTimeout(() => button.click(), 50);
      }
    },
    cards() {
      return Array.from(this.root.querySelectorAll(":scope > .card"));
    },
    videoOf(card) {
      return card ? card.querySelector("video.player") : null;
    },
    register(card) {
      if (card.dataset.registered) return;
      card.dataset.registered = "1";
      try {
        this.io.observe(card);
        const v = this.videoOf(card);
        if (v) {
          v.muted = this.muted;
          v.volume = this.volume;
          const slider = card.querySelector("input.volume");
          if (slider) slider.value = String(this.volume);
          const bar = card.querySelector(".progress");
          if (bar) this.wireSeek(card, bar);
          v.addEventListener("timeupdate", guard("timeupdate", () => this.onTime(card)));
          v.addEventListener("play", guard("play", () => card.classList.remove("is-paused")));
          v.addEventListener("pause", guard("pause", () => card.classList.toggle("is-paused", card === this.active)));
          v.addEventListener("ended", guard("ended", () => {
            if (this.view && this.view.card === card) this.view.passCompleted();
          }));
          v.addEventListener("error", guard("video error", () => card.classList.add("has-error")));
          this.applyCaptions(card);
          const track = card.querySelector("track");
          if (track) track.addEventListener("load", guard("captions loaded", () => this.placeCues(card)));
        }
        this.syncButtons(card);
      } catch (err) {
        console.error("[feed] could not set up a card", err);
      }
    },
    onIntersect(entries) {
      for (const entry of entries) {
        if (entry.isIntersecting && entry.intersectionRatio >= 0.6) this.activate(entry.target);
      }
    },
    onTime(card) {
      if (this.view && this.view.card === card) this.view.sample();
      const v = this.videoOf(card);
      const bar = card.querySelector(".progress-bar");
      if (v && bar && v.duration) bar.style.transform = "scaleX(" + Math.min(1, v.currentTime / v.duration) + ")";
      const slider = card.querySelector(".progress");
      if (v && slider && v.duration) {
        slider.setAttribute("aria-valuenow", v.currentTime.toFixed(1));
        slider.setAttribute("aria-valuetext", Math.round(v.currentTime) + " of " + Math.round(v.duration) + " seconds");
      }
    },
    // Seeking: press or drag on the progress bar (mouse, pen or finger), or arrow keys on it.
    // A seek is not watching: CardView only counts playing time that the wall clock allows.
    wireSeek(card, bar) {
      const seekTo = (clientX) => {
        const v = this.videoOf(card);
        if (!v || !v.duration || !isFinite(v.duration)) return;
        const box = bar.getBoundingClientRect();
        const fraction = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
        v.currentTime = fraction * v.duration;
        if (this.view && this.view.card === card) this.view.last = v.currentTime;
        const fill = card.querySelector(".progress-bar");
        if (fill) fill.style.transform = "scaleX(" + fraction + ")";
      };
      bar.addEventListener("pointerdown", guard("seek start", (e) => {
        e.preventDefault();
        e.stopPropagation();
        bar.classList.add("seeking");
        if (bar.setPointerCapture) bar.setPointerCapture(e.pointerId);
        seekTo(e.clientX);
      }));
      bar.addEventListener("pointermove", guard("seek move", (e) => {
        if (bar.classList.contains("seeking")) seekTo(e.clientX);
      }));
      const end = guard("seek end", () => bar.classList.remove("seeking"));
      bar.addEventListener("pointerup", end);
      bar.addEventListener("pointercancel", end);
      bar.addEventListener("click", (e) => e.stopPropagation());
      bar.addEventListener("keydown", guard("seek keys", (e) => {
        const v = this.videoOf(card);
        if (!v || !v.duration) return;
        const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
        if (!step) return;
        e.preventDefault();
        v.currentTime = Math.min(v.duration, Math.max(0, v.currentTime + step));
        if (this.view && this.view.card === card) this.view.last = v.currentTime;
      }));
    },
    setVolume(value) {
      this.volume = Math.min(1, Math.max(0, Number(value) || 0));
      store.set(KEYS.volume, this.volume);
      this.root.querySelectorAll("video.player").forEach((v) => { v.volume = this.volume; });
      this.root.querySelectorAll("input.volume").forEach((el) => { el.value = String(this.volume); });
      if (this.muted === (this.volume > 0)) this.toggleMute(); // sliding up unmutes, down to 0 mutes
    },

    // The first-visit interests dialog: nothing plays and nothing is logged until it is dismissed.
    watchOnboarding() {
      const dialog = document.getElementById("onboarding");
      if (!dialog) return;
      this.blocked = true;
      const observer = new MutationObserver(guard("onboarding closed", () => {
        if (dialog.isConnected) return;
        observer.disconnect();
        this.blocked = false;
        const card = this.pending || this.cards()[0];
        this.pending = null;
        if (card) this.activate(card);
      }));
      observer.observe(dialog.parentNode, { childList: true });
      const first = dialog.querySelector("input, button");
      if (first) first.focus({ preventScroll: true });
    },
    activate(card) {
      if (this.blocked) {
        this.pending = card;
        return;
      }
      if (!card || card === this.active || !card.isConnected) return;
      if (this.active) this.deactivate(this.active, "swipe");
      this.active = card;
      card.classList.add("is-active");
      const v = this.videoOf(card);
      if (v) {
        this.ensureSource(card);
        try {
          if (v.currentTime > 0) v.currentTime = 0; // coming back to a card starts it over
        } catch (err) { /* not seekable yet */ }
        this.view = new CardView(card, this);
        this.play(card);
      } else {
        this.view = null;
      }
      const cards = this.cards();
      const index = cards.indexOf(card);
      this.preload(cards[index + 1], "auto");
      this.preload(cards[index + 2], "metadata");
      this.releaseFar(cards, index);
      if (index >= cards.length - 3) this.loadMore();
      document.dispatchEvent(new CustomEvent("foryou:card", { detail: { videoId: card.dataset.videoId || null } }));
    },
    deactivate(card, reason) {
      card.classList.remove("is-active", "is-paused");
      this.closeSheet(card);
      const v = this.videoOf(card);
      if (v) v.pause();
      if (this.view && this.view.card === card) {
        this.view.finish(reason);
        this.view = null;
        Outbox.beacon();
      }
    },
    play(card) {
      const v = this.videoOf(card);
      if (!v) return;
      v.muted = this.muted;
      card.classList.remove("is-paused");
      const attempt = v.play();
      if (attempt && attempt.catch) {
        attempt.catch((err) => {
          if (err && err.name === "NotAllowedError" && !v.muted) {
            // The browser refuses sound before a gesture on this page: play muted, keep the preference.
            v.muted = true;
            document.body.classList.add("is-muted");
            this.syncMuteButtons(true);
            toast("Tap the speaker to turn the sound on");
            v.play().catch(() => card.classList.add("is-paused"));
          } else if (err && err.name !== "AbortError" && card === this.active) {
            card.classList.add("is-paused");
          }
        });
      }
    },
    ensureSource(card) {
      const v = this.videoOf(card);
      if (v && !v.getAttribute("src") && v.dataset.src) {
        v.src = v.dataset.src;
        delete card.dataset.released;
      }
    },
    preload(card, level) {
      const v = this.videoOf(card);
      if (!v) return;
      this.ensureSource(card);
      if (level === "auto" && v.preload !== "auto") {
        v.preload = "auto";
        if (v.readyState === 0) v.load();
      } else if (level === "metadata" && v.preload === "none") {
        v.preload = "metadata";
      }
    },
    // Long sessions: cards far from the active one give their video buffers back (the poster stays).
    releaseFar(cards, index) {
      cards.forEach((card, i) => {
        if (Math.abs(i - index) <= 4 || card.dataset.released) return;
        const v = this.videoOf(card);
        if (!v || !v.getAttribute("src") || v.readyState === 0) return;
        v.pause();
        v.removeAttribute("src");
        v.preload = "none";
        v.load();
        card.dataset.released = "1";
      });
    },
    loadMore() {
      const loader = this.root.querySelector(".feed-loader");
      if (loader && window.htmx) window.htmx.trigger(loader, "nearend");
    },
    go(step) {
      const cards = this.cards();
      if (!cards.length) return;
      const index = Math.max(0, cards.indexOf(this.active));
      const target = cards[Math.min(cards.length - 1, Math.max(0, index + step))];
      if (step > 0 && index >= cards.length - 1) this.loadMore();
      if (!target || target === this.active) return;
      this.scrollTo(target, true);
      this.activate(target);
    },
    scrollTo(card, smooth) {
      this.root.scrollTo({ top: card.offsetTop, behavior: smooth && !reduceMotion ? "smooth" : "auto" });
    },

    // ---- input --------------------------------------------------------------------------------------
    onKey(e) {
      if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
      const target = e.target instanceof Element ? e.target : document.body;
      if (e.key === "Tab" && this.isDrawerOpen()) {
        this.trapFocus(this.drawer(), e);
        return;
      }
      if (e.key === "Escape") {
        if (this.isDrawerOpen()) this.closeDrawer();
        else if (this.active) this.closeSheet(this.active, true);
        return;
      }
      if (this.isDrawerOpen() || target.closest("input, textarea, select, [contenteditable], .sheet")) return;
      switch (e.key) {
        case "ArrowDown": case "PageDown": case "j": case "J":
          e.preventDefault();
          this.go(1);
          break;
        case "ArrowUp": case "PageUp": case "k": case "K":
          e.preventDefault();
          this.go(-1);
          break;
        case " ": case "Spacebar":
          if (target.closest("button, a, summary")) return; // the focused control gets its own activation
          e.preventDefault();
          this.togglePlay(this.active);
          break;
        case "m": case "M":
          this.toggleMute();
          break;
        default:
      }
    },
    onWheel(e) {
      if (e.ctrlKey || (e.target instanceof Element && e.target.closest(".sheet"))) return;
      e.preventDefault();
      const now = performance.now();
      const w = this.wheel;
      if (now < w.lockUntil) {
        w.lockUntil = Math.max(w.lockUntil, now + 120); // swallow a trackpad's inertia: one gesture, one card
        return;
      }
      if (now - w.last > 300) w.acc = 0;
      w.last = now;
      w.acc += e.deltaY * (e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1);
      if (Math.abs(w.acc) >= 40) {
        this.go(w.acc > 0 ? 1 : -1);
        w.acc = 0;
        w.lockUntil = now + 450;
      }
    },
    onTouchStart(e) {
      const inSheet = e.target instanceof Element && e.target.closest(".sheet, .progress, .volume-control");
      if (e.touches.length !== 1 || inSheet) {
        this.touch = null;
        return;
      }
      const t = e.touches[0];
      this.touch = { x: t.clientX, y: t.clientY, time: performance.now() };
    },
    onTouchMove(e) {
      if (this.touch && e.cancelable) e.preventDefault(); // we move the feed ourselves: one card per swipe
    },
    onTouchEnd(e) {
      if (!this.touch) return;
      const start = this.touch;
      this.touch = null;
      const t = e.changedTouches[0];
      const dy = start.y - t.clientY;
      const dx = start.x - t.clientX;
      if (Math.abs(dy) > 40 && Math.abs(dy) > Math.abs(dx) * 1.2) {
        this.suppressTapUntil = performance.now() + 400;
        this.go(dy > 0 ? 1 : -1);
      }
    },
    // Tap: pause/play (after a short wait, in case it is a double tap). Double tap: like with a heart.
    onTap(card, e) {
      if (!card || performance.now() < this.suppressTapUntil) return;
      if (e.detail === 0) {
        this.togglePlay(card); // keyboard activation of the button
        return;
      }
      const now = performance.now();
      if (this.lastTap && this.lastTap.card === card && now - this.lastTap.time < DOUBLE_TAP_MS) {
        clearTimeout(this.tapTimer);
        this.lastTap = null;
        this.doubleTap(card, e);
        return;
      }
      this.lastTap = { card: card, time: now };
      clearTimeout(this.tapTimer);
      this.tapTimer = setTimeout(guard("tap", () => {
        this.lastTap = null;
        this.togglePlay(card);
      }), DOUBLE_TAP_MS);
    },
    doubleTap(card, e) {
      this.heartBurst(card, e.clientX, e.clientY);
      const like = card.querySelector("[data-action='like']");
      if (like && like.getAttribute("aria-pressed") !== "true" && !like.classList.contains("htmx-request")) like.click();
    },
    heartBurst(card, x, y) {
      const layer = card.querySelector(".heart-layer");
      if (!layer) return;
      const box = layer.getBoundingClientRect();
      const heart = document.createElement("span");
      heart.className = "heart-pop";
      heart.style.left = (x ? x - box.left : box.width / 2) + "px";
      heart.style.top = (y ? y - box.top : box.height / 2) + "px";
      heart.style.setProperty("--tilt", (Math.random() * 40 - 20).toFixed(0) + "deg");
      const icon = card.querySelector("[data-action='like'] svg");
      if (icon) heart.appendChild(icon.cloneNode(true));
      layer.appendChild(heart);
      setTimeout(() => heart.remove(), 1000);
    },
    togglePlay(card) {
      card = card || this.active;
      const v = this.videoOf(card);
      if (!v) return;
      if (card !== this.active) this.activate(card);
      if (v.paused) this.play(card);
      else v.pause();
      const layer = card.querySelector(".tap-layer");
      if (layer) layer.setAttribute("aria-label", v.paused ? "Play video" : "Pause video");
    },
    toggleMute() {
      this.muted = !this.muted;
      store.set(KEYS.muted, this.muted);
      this.root.querySelectorAll("video.player").forEach((v) => { v.muted = this.muted; });
      document.body.classList.toggle("is-muted", this.muted);
      this.syncMuteButtons(this.muted);
      if (!this.muted && this.active) {
        const v = this.videoOf(this.active);
        if (v && v.paused && !this.active.classList.contains("is-paused")) this.play(this.active);
      }
    },
    syncMuteButtons(muted) {
      this.root.querySelectorAll("[data-action='mute']").forEach((b) => {
        b.setAttribute("aria-pressed", muted ? "true" : "false");
        b.setAttribute("aria-label", muted ? "Unmute" : "Mute");
      });
    },
    toggleCaptions() {
      this.captions = !this.captions;
      store.set(KEYS.captions, this.captions);
      this.cards().forEach((card) => {
        this.applyCaptions(card);
        this.syncButtons(card);
      });
      toast(this.captions ? "Captions on" : "Captions off");
    },
    applyCaptions(card) {
      const v = this.videoOf(card);
      if (!v || !v.textTracks) return;
      for (const track of Array.from(v.textTracks)) track.mode = this.captions ? "showing" : "hidden";
      this.placeCues(card);
    },
    // Cues go just above the creator name and caption (not over them): each cue's bottom edge is put at the
    // top of the caption block, as a percentage of the video's height.
    placeCues(card) {
      const v = this.videoOf(card);
      const meta = card.querySelector(".meta");
      if (!v || !meta || !v.textTracks) return;
      const box = v.getBoundingClientRect();
      if (!box.height) return;
      const top = meta.getBoundingClientRect().top - box.top - 10;
      const line = Math.max(10, Math.min(95, (top / box.height) * 100));
      for (const track of Array.from(v.textTracks)) {
        for (const cue of Array.from(track.cues || [])) {
          if (cue.snapToLines !== false || Math.abs((cue.line || 0) - line) > 0.5) {
            cue.snapToLines = false;
            cue.line = line;
            cue.lineAlign = "end";
          }
        }
      }
    },
    syncButtons(card) {
      card.querySelectorAll("[data-action='mute']").forEach((b) => {
        b.setAttribute("aria-pressed", this.muted ? "true" : "false");
        b.setAttribute("aria-label", this.muted ? "Unmute" : "Mute");
      });
      card.querySelectorAll("[data-action='captions']").forEach((b) => {
        b.setAttribute("aria-pressed", this.captions ? "true" : "false");
        b.setAttribute("aria-label", this.captions ? "Turn captions off" : "Turn captions on");
      });
    },

    // ---- the "more" sheet and the comments drawer -------------------------------------------------------
    toggleSheet(card, button) {
      const sheet = card && card.querySelector(".sheet");
      if (!sheet) return;
      if (sheet.hidden) {
        sheet.hidden = false;
        button.setAttribute("aria-expanded", "true");
        const first = sheet.querySelector("button, a");
        if (first) first.focus({ preventScroll: true });
      } else {
        this.closeSheet(card, true);
      }
    },
    closeSheet(card, restoreFocus) {
      const sheet = card && card.querySelector(".sheet");
      if (!sheet || sheet.hidden) return;
      sheet.hidden = true;
      const more = card.querySelector("[data-action='more']");
      if (more) {
        more.setAttribute("aria-expanded", "false");
        if (restoreFocus) more.focus({ preventScroll: true });
      }
    },
    toggleDisclosure(button) {
      const panel = document.getElementById(button.getAttribute("aria-controls"));
      if (!panel) return;
      const open = panel.hidden;
      panel.hidden = !open;
      button.setAttribute("aria-expanded", open ? "true" : "false");
    },
    drawer() {
      return document.getElementById("comments-drawer");
    },
    // Tab and Shift+Tab go round the drawer's own controls while it is open.
    trapFocus(container, e) {
      const focusable = Array.from(container.querySelectorAll(
        "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), textarea, select, [tabindex='0']"))
        .filter((el) => el.offsetParent !== null || el === document.activeElement);
      if (!focusable.length) return;
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      const inside = container.contains(document.activeElement);
      if (e.shiftKey && (document.activeElement === first || !inside)) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (document.activeElement === last || !inside)) {
        e.preventDefault();
        first.focus();
      }
    },
    isDrawerOpen() {
      const d = this.drawer();
      return !!(d && !d.hidden);
    },
    openDrawer(opener) {
      const d = this.drawer();
      if (!d) return;
      this.drawerOpener = opener;
      const body = document.getElementById("comments-body");
      if (body && body.dataset.videoId !== (opener.closest(".card") || {}).id) {
        body.innerHTML = '<p class="muted">Loading…</p>';
        body.dataset.videoId = (opener.closest(".card") || {}).id || "";
      }
      d.hidden = false;
      const backdrop = document.querySelector(".drawer-backdrop");
      if (backdrop) backdrop.hidden = false;
      document.body.classList.add("drawer-open");
      requestAnimationFrame(() => d.classList.add("open"));
      const close = d.querySelector("[data-action='close-drawer']");
      if (close) close.focus({ preventScroll: true });
    },
    closeDrawer() {
      const d = this.drawer();
      if (!d || d.hidden) return;
      d.classList.remove("open");
      d.hidden = true;
      const backdrop = document.querySelector(".drawer-backdrop");
      if (backdrop) backdrop.hidden = true;
      document.body.classList.remove("drawer-open");
      if (this.drawerOpener && this.drawerOpener.isConnected) this.drawerOpener.focus({ preventScroll: true });
      this.drawerOpener = null;
    },

    // ---- share ------------------------------------------------------------------------------------------
    async share(card, button) {
      const url = new URL(button.dataset.url || "/v/" + card.dataset.videoId, window.location.origin).href;
      let platform = null;
      if (navigator.share) {
        try {
          await navigator.share({ title: card.dataset.title || "ForYou", url: url });
          platform = "web_share";
        } catch (err) {
          if (err && err.name === "AbortError") return;
        }
      }
      if (!platform) {
        if (await copyText(url)) {
          platform = "copy_link";
          toast("Link copied");
        } else {
          toast(url, 8000);
          return;
        }
      }
      const info = new CardView(card, this).info({ platform: platform });
      delete info.video_duration;
      Outbox.put({ event_id: "sh" + uid().slice(0, 30), type: "share", video_id: card.dataset.videoId, info: info });
      Outbox.flush();
      const count = button.querySelector("[data-share-count]");
      if (count) {
        const n = (parseInt(count.dataset.shareCount, 10) || 0) + 1;
        count.dataset.shareCount = String(n);
        if (n < 1000) count.textContent = String(n);
        button.setAttribute("aria-label", "Share (" + n + ")");
      }
    },

    // ---- cards that leave: "Not interested", reports --------------------------------------------------------
    removeCards(detail) {
      const doomed = this.cards().filter((c) => c.dataset.videoId === detail.video_id
        || (detail.scope === "creator" && c.dataset.creatorId === detail.creator_id));
      if (!doomed.length) return;
      let next = null;
      if (doomed.includes(this.active)) {
        const cards = this.cards();
        const index = cards.indexOf(this.active);
        next = cards.slice(index + 1).find((c) => !doomed.includes(c))
          || cards.slice(0, index).reverse().find((c) => !doomed.includes(c)) || null;
        this.deactivate(this.active, "removed");
        this.active = null;
      }
      doomed.forEach((card) => {
        this.io.unobserve(card);
        const v = this.videoOf(card);
        if (v) {
          v.pause();
          v.removeAttribute("src");
          v.load();
        }
        card.remove();
      });
      if (next) {
        this.scrollTo(next, false);
        this.activate(next);
      } else {
        this.loadMore();
      }
    },
    syncFollow(detail) {
      const buttons = Array.from(document.querySelectorAll(".follow-button[data-creator-id='" + detail.creator_id + "']"));
      const fresh = buttons.find((b) => b.getAttribute("aria-pressed") === String(detail.following));
      if (!fresh) return;
      buttons.forEach((b) => {
        if (b === fresh || b.getAttribute("aria-pressed") === String(detail.following)) return;
        if (!b.classList.contains("follow-rail") || !fresh.classList.contains("follow-rail")) return;
        const clone = fresh.cloneNode(true);
        const card = b.closest(".card");
        clone.setAttribute("hx-vals", JSON.stringify({ variant: "rail", video_id: card ? card.dataset.videoId : "" }));
        b.replaceWith(clone);
        if (window.htmx) window.htmx.process(clone);
      });
    },
  };

  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (err) { /* fall through to the old way */ }
    try {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      return ok;
    } catch (err) {
      return false;
    }
  }

  // ---- wiring -------------------------------------------------------------------------------------------
  function onInput(e) {
    const el = e.target instanceof Element ? e.target.closest("input.volume") : null;
    if (el) Feed.setVolume(el.value);
  }

  function onClick(e) {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    if (target.classList.contains("sheet")) {
      Feed.closeSheet(target.closest(".card"), true); // a tap on the dimmed area outside the panel
      return;
    }
    const el = target.closest("[data-action]");
    if (!el) return;
    const card = el.closest(".card");
    switch (el.dataset.action) {
      case "toggle-play": Feed.onTap(card, e); break;
      case "mute": Feed.toggleMute(); break;
      case "captions": Feed.toggleCaptions(); break;
      case "comments": Feed.openDrawer(el); break;
      case "close-drawer": Feed.closeDrawer(); break;
      case "share": Feed.share(card, el).catch((err) => console.error("[feed] share failed", err)); break;
      case "more": Feed.toggleSheet(card, el); break;
      case "close-sheet": Feed.closeSheet(card, true); break;
      case "why": case "report-open": Feed.toggleDisclosure(el); break;
      case "next": Feed.go(1); break;
      case "prev": Feed.go(-1); break;
      default:
    }
  }

  function endView(reason) {
    if (Feed.view) {
      Feed.view.finish(reason);
      Feed.view = null;
    }
    if (Feed.active) {
      const v = Feed.videoOf(Feed.active);
      if (v && !v.paused) {
        v.pause();
        Feed.active.dataset.resume = "1";
      }
    }
    Outbox.beacon();
  }

  function start() {
    Outbox.load();
    FY.outbox = Outbox; // for tests and debugging
    FY.feed = Feed;
    document.body.addEventListener("foryou:toast", guard("toast", (e) => toast(e.detail && e.detail.message)));
    document.body.addEventListener("htmx:sendError", guard("offline", (e) => {
      const loader = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest(".feed-loader");
      if (loader) loader.querySelector(".retry").hidden = false;
      toast("You seem to be offline. Try again in a moment.");
    }));
    document.body.addEventListener("htmx:responseError", guard("response error", (e) => {
      const loader = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest(".feed-loader");
      if (loader) loader.querySelector(".retry").hidden = false;
      if (e.detail.xhr && e.detail.xhr.status >= 500) toast("Something went wrong. Please try again.");
    }));
    const root = document.getElementById("feed");
    if (!root) {
      Outbox.flush();
      return;
    }
    Feed.init(root);
    document.addEventListener("click", guard("click", onClick));
    document.addEventListener("input", guard("volume", onInput));
    document.addEventListener("keydown", guard("keydown", (e) => Feed.onKey(e)));
    document.body.addEventListener("foryou:hidden", guard("hidden", (e) => {
      Feed.removeCards(e.detail || {});
      if (e.detail && e.detail.message) toast(e.detail.message, 3000);
    }));
    document.body.addEventListener("foryou:follow", guard("follow", (e) => Feed.syncFollow(e.detail || {})));
    if (window.htmx) {
      window.htmx.onLoad(guard("new cards", (el) => {
        if (!(el instanceof Element)) return;
        const cards = el.matches(".card") ? [el] : Array.from(el.querySelectorAll(".card"));
        cards.forEach((card) => Feed.register(card));
      }));
    }
    document.addEventListener("visibilitychange", guard("visibility", () => {
      if (document.visibilityState === "hidden") {
        endView("hidden");
      } else if (Feed.active) {
        const v = Feed.videoOf(Feed.active);
        if (v) Feed.view = new CardView(Feed.active, Feed);
        if (v && Feed.active.dataset.resume) {
          delete Feed.active.dataset.resume;
          Feed.play(Feed.active);
        }
        Outbox.flush();
      }
    }));
    window.addEventListener("pagehide", guard("pagehide", () => endView("hidden")));
    window.addEventListener("online", () => Outbox.flush());
    window.addEventListener("resize", guard("resize", () => { if (Feed.active) Feed.placeCues(Feed.active); }));
    setInterval(guard("periodic flush", () => {
      if (Feed.view) Feed.view.snapshot();
      Outbox.flush();
    }), FLUSH_EVERY_MS);
    Outbox.flush(); // whatever an earlier page could not deliver
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", guard("start", start));
  else guard("start", start)();
})();
