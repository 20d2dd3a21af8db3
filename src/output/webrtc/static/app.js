// puppetcam live preview: receive the stream over WebRTC, show fps / latency / drops.
// ?bare=1 hides the overlay (OBS Browser Source); ?token=... is sent with every request when required.
// ?transparent=1 (with animation.background: transparent): the key colour is keyed out onto a transparent canvas.
// window.puppetcam holds the measurements the benchmarks and tests read (bounded arrays).
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const bare = params.get("bare") === "1";
  const token = params.get("token");
  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const soundButton = document.getElementById("sound");
  const message = document.getElementById("message");
  const MAX_SAMPLES = 20000;
  const STATS_INTERVAL_MS = 500;
  const RETRY_MS = 2000;

  const state = {
    connected: false,
    connectionState: "new",
    error: null,
    frameTimes: [],   // wall-clock ms each decoded frame was due on screen (requestVideoFrameCallback)
    g2g: [],          // glass-to-glass ms of each newly shown stamped frame
    stats: [],        // {t, framesDecoded, freezeCount, framesDropped, audioSamples, audioLevel}
    server: null,     // the last /stats answer
    pc: null,
    reset() { this.frameTimes = []; this.g2g = []; this.stats = []; },
  };
  window.puppetcam = state;

  function push(arr, v) { arr.push(v); if (arr.length > MAX_SAMPLES) arr.splice(0, arr.length - MAX_SAMPLES); }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }
  function show(text) { message.textContent = text; message.hidden = !text; }

  function waitIceGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(done, timeoutMs);
    });
  }

  let retryTimer = null;
  function retryLater() {
    if (retryTimer) return;
    retryTimer = setTimeout(() => { retryTimer = null; connect(); }, RETRY_MS);
  }

  async function connect() {
    if (state.pc) { try { state.pc.close(); } catch (e) { /* already closed */ } }
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (ev) => {
      stream.addTrack(ev.track);
      video.srcObject = stream;
      if (ev.track.kind === "audio") enableSound();
    };
    pc.onconnectionstatechange = () => {
      state.connectionState = pc.connectionState;
      state.connected = pc.connectionState === "connected";
      if (pc.connectionState === "failed" && state.pc === pc) { show("connection lost; retrying"); retryLater(); }
      if (pc.connectionState === "connected") show("");
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitIceGathering(pc, 3000);
      const resp = await fetch("offer", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        state.error = `${resp.status}: ${body.error || resp.statusText}`;
        show(state.error);
        if (resp.status === 503) retryLater();
        return;
      }
      await pc.setRemoteDescription(body);
    } catch (e) {
      state.error = String(e);
      show("cannot connect: " + e + "; retrying");
      retryLater();
    }
  }

  function enableSound() {
    if (bare) {
      // OBS's browser source may autoplay with sound; a plain browser may refuse, then stay muted.
      video.muted = false;
      video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });
      return;
    }
    soundButton.hidden = false;
    soundButton.onclick = () => { video.muted = !video.muted; soundButton.textContent = video.muted ? "Click for sound" : "Mute"; };
  }

  // Every decoded frame: when it is shown, and its stamp if it carries one.
  const stampCtx = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
  let lastStamp = null;
  function onFrame(now, meta) {
    const shownAt = performance.timeOrigin + (meta.expectedDisplayTime || now);
    push(state.frameTimes, shownAt);
    const w = meta.width || video.videoWidth, h = meta.height || video.videoHeight;
    if (w >= 32 && h >= 32) {
      const value = window.PuppetStamp.readStampFrom(video, w, h, stampCtx);
      if (value !== null && value !== lastStamp) { push(state.g2g, shownAt - value); lastStamp = value; }
    }
    video.requestVideoFrameCallback(onFrame);
  }
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) video.requestVideoFrameCallback(onFrame);

  async function sampleStats() {
    const pc = state.pc;
    if (!pc) return;
    const sample = { t: performance.timeOrigin + performance.now(), framesDecoded: 0, freezeCount: 0, framesDropped: 0,
                     audioSamples: 0, audioLevel: 0 };
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "video") {
        sample.framesDecoded = s.framesDecoded || 0;
        sample.freezeCount = s.freezeCount || 0;
        sample.framesDropped = s.framesDropped || 0;
      } else if (s.kind === "audio") {
        sample.audioSamples = s.totalSamplesReceived || 0;
        sample.audioLevel = s.audioLevel || 0;
      }
    });
    push(state.stats, sample);
  }

  function pct(arr, q) {
    if (!arr.length) return null;
    const s = arr.slice().sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))];
  }

  function fmt(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }

  async function updateOverlay() {
    try {
      const resp = await fetch("stats", { headers: headers(), cache: "no-store" });
      if (resp.ok) state.server = await resp.json();
    } catch (e) { /* the server may be restarting */ }
    const srv = state.server || {};
    const st = state.stats;
    let decodedFps = null;
    if (st.length >= 2) {
      const a = st[Math.max(0, st.length - 5)], b = st[st.length - 1];
      if (b.t > a.t) decodedFps = (b.framesDecoded - a.framesDecoded) / ((b.t - a.t) / 1000);
    }
    const lat = srv.latency_ms || {};
    const g2g = state.g2g.slice(-60);
    overlay.textContent = [
      `pipeline ${fmt(srv.fps, 1)} fps   shown ${fmt(decodedFps, 1)} fps`,
      `latency ${fmt(lat.p50, 1)} / ${fmt(lat.p95, 1)} ms (p50/p95)` + (g2g.length ? `   glass-to-glass ${fmt(pct(g2g, 0.5), 0)} ms` : ""),
      `drops ${srv.drops ?? "–"}   viewers ${srv.viewers ?? "–"}   ${state.connectionState}`,
    ].join("\n");
  }

  // Say goodbye when the tab goes away, so the server frees this viewer at once (a killed tab is
  // noticed by the server's watchdog instead).
  window.addEventListener("pagehide", () => { if (state.pc) state.pc.close(); });

  if (params.get("transparent") === "1") {
    document.documentElement.classList.add("transparent");
    const canvas = document.getElementById("keyed");
    canvas.hidden = false;
    state.keyed = window.PuppetChroma.key(video, canvas);
  }
  setInterval(() => { sampleStats().catch(() => {}); }, STATS_INTERVAL_MS);
  if (!bare) {
    overlay.hidden = false;
    setInterval(updateOverlay, STATS_INTERVAL_MS);
  }
  connect();
})();
