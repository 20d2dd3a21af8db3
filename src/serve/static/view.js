// The viewer page /view/{id}?token=VIEWER_TOKEN[&bare=1][&transparent=1|0]: the avatar with its voice and captions.
// A session whose background is transparent (or ?transparent=1) is drawn on a transparent canvas, its key colour
// keyed out (chroma.js): an OBS Browser Source shows the person over the scene. ?transparent=0: the keyed video as sent.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const bare = params.get("bare") === "1";
  const sessionId = location.pathname.split("/").filter(Boolean).pop();
  const video = document.getElementById("avatar");
  const overlay = document.getElementById("overlay");
  const message = document.getElementById("message");
  const sound = document.getElementById("sound");
  const state = { frames: 0, firstFrameAt: null, connectionState: "new", error: null, captions: [], pc: null, keyed: null };
  window.puppetcam = state;
  const caps = Puppet.captions(document.getElementById("caption"), () => params.get("captions") !== "0");
  function show(text) { message.textContent = text; message.hidden = !text; }

  let retry = null;
  function retryLater() { if (!retry) retry = setTimeout(() => { retry = null; start(); }, 2000); }

  async function start() {
    if (state.pc) { try { state.pc.close(); } catch (e) { /* closed */ } }
    const stream = new MediaStream();
    try {
      state.pc = await Puppet.connect(sessionId, token, "viewer", null, {
        onTrack(track) {
          stream.addTrack(track);
          video.srcObject = stream;
          if (track.kind === "audio") enableSound();
        },
        onMessage(msg) { state.captions.push(msg); caps.show(msg); },
        onState(s) {
          state.connectionState = s;
          if (s === "connected") show("");
          if (s === "failed") { show("connection lost; retrying"); retryLater(); }
          // a session that moved to another node (ray engine) leaves this one "disconnected": offer again
          if (s === "disconnected") {
            const pc = state.pc;
            setTimeout(() => { if (state.pc === pc && pc.connectionState === "disconnected") { show("connection lost; retrying"); retryLater(); } }, 2000);
          }
        },
      });
    } catch (e) {
      state.error = String(e.message || e);
      show(state.error);
      if (e.status === 503 || e.status === undefined) retryLater();
    }
  }

  function enableSound() {
    if (bare) {
      video.muted = false;
      video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });
      return;
    }
    sound.hidden = false;
    sound.onclick = () => { video.muted = !video.muted; sound.textContent = video.muted ? "Click for sound" : "Mute"; };
  }

  async function updateOverlay() {
    try {
      const info = await Puppet.api("GET", `/api/sessions/${sessionId}`, token);
      const lat = info.latency_ms || {};
      overlay.textContent = `${info.fps.toFixed(1)} fps   latency ${lat.p50 ?? "–"} / ${lat.p95 ?? "–"} ms   ` +
        `viewers ${info.viewers}   ${state.connectionState}`;
    } catch (e) { overlay.textContent = String(e.message || e); }
  }

  function keyOut(keyColor) {
    if (state.keyed) return;
    document.documentElement.classList.add("transparent");
    const canvas = document.getElementById("keyed");
    canvas.hidden = false;
    state.keyed = PuppetChroma.key(video, canvas, keyColor);
  }

  async function transparency() {
    const want = params.get("transparent");
    if (want === "0") return;
    if (want === "1") { keyOut(); return; }
    try {
      const info = await Puppet.api("GET", `/api/sessions/${sessionId}`, token);
      if (info.transparent) keyOut(info.key_color);
    } catch (e) { /* start() shows connection errors */ }
  }

  Puppet.watchFrames(video, state);
  window.addEventListener("pagehide", () => { if (state.pc) state.pc.close(); });
  if (!bare) { overlay.hidden = false; setInterval(updateOverlay, 1000); }
  transparency();
  start();
})();
