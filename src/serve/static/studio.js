// The studio page: make a session (bundled or uploaded portrait), send camera and microphone, get the avatar
// back with its voice over the same peer connection; controls, say, captions and a viewer link.
// ?admin=TOKEN: the server's admin token (servers off loopback); ?session=ID&token=TOKEN: reopen a session.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = { sessionId: params.get("session"), token: params.get("token"), viewerUrl: null, frames: 0,
                  firstFrameAt: null, connectionState: "new", error: null, captions: [], pc: null, local: null,
                  background: null, keyed: null };
  window.studio = state;
  const avatar = $("avatar");
  const caps = Puppet.captions($("caption"), () => $("captions").checked);

  function fail(text) {
    state.error = text;
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  async function media(driver) {
    if (driver !== "browser") return null;
    try {
      return await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    } catch (e) {
      throw new Error("camera and microphone: " + (e.message || e.name) + "; allow them in the browser, or choose text only");
    }
  }

  async function createSession(driver) {
    const form = new FormData();
    form.append("driver", driver);
    const upload = document.querySelector("input[name=portrait-choice]:checked").value === "upload";
    if (upload) {
      const file = $("portrait").files[0];
      if (!file) throw new Error("portrait: choose an image file to upload, or use the bundled portrait");
      form.append("portrait", file, file.name);
    }
    const bg = $("background").value;
    if (bg === "image") {
      const file = $("background-image").files[0];
      if (!file) throw new Error("background: choose a picture to upload, or another background");
      form.append("background_image", file, file.name);
    } else {
      form.append("background", backgroundSpec(bg));
    }
    return Puppet.api("POST", "/api/sessions", params.get("admin"), form);
  }

  async function start(ev) {
    if (ev) ev.preventDefault();
    fail("");
    $("start").disabled = true;
    const driver = $("driver").value;
    try {
      state.local = await media(driver);
      if (state.local) { $("self").srcObject = state.local; $("self").hidden = false; }
      if (!state.sessionId) {
        const made = await createSession(driver);
        state.sessionId = made.id;
        state.token = made.token;
        state.viewerUrl = made.viewer_url;
        history.replaceState(null, "", `/?session=${made.id}&token=${made.token}`);
      } else {
        const info = await Puppet.api("GET", `/api/sessions/${state.sessionId}`, state.token);
        state.viewerUrl = null;
        if (info.state !== "running") throw new Error(`session ${state.sessionId} is ${info.state}`);
      }
      await connect();
      refreshBackground();
      $("setup").hidden = true;
      $("controls").hidden = false;
      $("viewer-link").value = state.viewerUrl || "(the viewer link was given when the session was made)";
    } catch (e) {
      fail(String(e.message || e));
      if (state.local) state.local.getTracks().forEach((t) => t.stop());
      $("start").disabled = false;
    }
  }

  async function connect() {
    const stream = new MediaStream();
    state.pc = await Puppet.connect(state.sessionId, state.token, "studio", state.local, {
      onTrack(track) { stream.addTrack(track); avatar.srcObject = stream; },
      onMessage(msg) { state.captions.push(msg); caps.show(msg); },
      onState(s) {
        state.connectionState = s;
        if (s === "failed") reconnectLater();
        // a session that moved to another node (ray engine) leaves this one "disconnected": offer again
        if (s === "disconnected") { const pc = state.pc; setTimeout(() => { if (state.pc === pc && pc.connectionState === "disconnected") reconnectLater(); }, 2000); }
        if (s === "connected") fail("");
      },
    });
  }

  let reconnecting = null;
  function reconnectLater() {  // every 2 s until the session answers again (it may be moving: 503)
    if (reconnecting) return;
    fail("connection lost; reconnecting");
    reconnecting = setTimeout(() => {
      reconnecting = null;
      if (state.pc) { try { state.pc.close(); } catch (e) { /* closed */ } }
      connect().catch((e) => { fail(String(e.message || e)); if (e.status !== 404 && e.status !== 401 && e.status !== 403) reconnectLater(); });
    }, 2000);
  }

  function control(body) {
    return Puppet.api("POST", `/api/sessions/${state.sessionId}/controls`, state.token, body).catch((e) => fail(e.message));
  }

  // The background: chosen at creation, changed live. A transparent one comes over the key colour; the studio keys it
  // out onto a canvas over a checkerboard, as an OBS Browser Source on the viewer link would over the scene.
  function backgroundSpec(kind) {
    return kind === "color" ? `color:${$("background-color").value}` : kind;
  }
  function showBackground(info) {
    state.background = info.background;
    const kind = info.background.startsWith("color:") ? "color" : info.background.startsWith("image:") ? "image" : info.background;
    $("live-background").value = kind;
    if (kind === "color") $("background-color").value = info.background.slice(6, 13).toLowerCase();
    const canvas = $("keyed");
    if (info.transparent && !state.keyed) {
      document.querySelector(".stage").classList.add("keyed");
      canvas.hidden = false;
      state.keyed = PuppetChroma.key(avatar, canvas, info.key_color);
    } else if (!info.transparent && state.keyed) {
      state.keyed.stop();
      state.keyed = null;
      canvas.hidden = true;
      document.querySelector(".stage").classList.remove("keyed");
    }
  }
  function refreshBackground() {
    return Puppet.api("GET", `/api/sessions/${state.sessionId}`, state.token).then(showBackground).catch((e) => fail(e.message));
  }
  function setBackground() {
    const spec = backgroundSpec($("live-background").value);
    return Puppet.api("POST", `/api/sessions/${state.sessionId}/background`, state.token, { background: spec })
      .then((r) => { fail(""); return Puppet.api("GET", `/api/sessions/${state.sessionId}`, state.token); })
      .then(showBackground).catch((e) => { fail(e.message); refreshBackground(); });
  }
  $("background").onchange = (e) => { $("background-image-label").hidden = e.target.value !== "image"; };
  $("live-background").onchange = setBackground;
  $("background-color").onchange = () => { if ($("live-background").value === "color") setBackground(); };

  $("setup").addEventListener("submit", start);
  $("neutral").onclick = () => control({ reset_neutral: true });
  $("motion-mode").onchange = (e) => control({ motion_mode: e.target.value });
  $("mouth-owner").onchange = (e) => control({ mouth_owner: e.target.value });
  $("pose-gain").onchange = (e) => control({ pose_gain: Number(e.target.value) });
  $("expression-gain").onchange = (e) => control({ expression_gain: Number(e.target.value) });
  let expression = "none";
  function express(name) {
    expression = name;
    const intensity = Number($("expression-intensity").value);
    document.querySelectorAll("[data-expression]").forEach((b) => b.classList.toggle("on", b.dataset.expression === name && name !== "none"));
    return Puppet.api("POST", `/api/sessions/${state.sessionId}/expression`, state.token, { name, intensity })
      .then(() => fail("")).catch((e) => fail(e.message));
  }
  document.querySelectorAll("[data-expression]").forEach((b) => { b.onclick = () => express(b.dataset.expression); });
  $("expression-intensity").onchange = () => { if (expression !== "none") express(expression); };
  $("say").onclick = () => {
    const text = $("say-text").value;
    Puppet.api("POST", `/api/sessions/${state.sessionId}/say`, state.token, { text, voice: $("voice").value })
      .then(() => fail("")).catch((e) => fail(e.message));
  };
  $("interrupt").onclick = () => {
    caps.clear();
    Puppet.api("POST", `/api/sessions/${state.sessionId}/interrupt`, state.token).catch((e) => fail(e.message));
  };
  $("captions").onchange = () => { if (!$("captions").checked) caps.clear(); };
  $("copy").onclick = async () => {
    $("viewer-link").select();
    try { await navigator.clipboard.writeText($("viewer-link").value); } catch (e) { document.execCommand("copy"); }
  };
  $("end").onclick = async () => {
    await Puppet.api("DELETE", `/api/sessions/${state.sessionId}`, state.token).catch(() => {});
    if (state.pc) state.pc.close();
    if (state.local) state.local.getTracks().forEach((t) => t.stop());
    location.href = "/";
  };

  setInterval(async () => {
    if (!state.sessionId || !state.token || $("controls").hidden) return;
    try {
      const info = await Puppet.api("GET", `/api/sessions/${state.sessionId}`, state.token);
      const lat = info.latency_ms || {};
      $("stats").textContent = `${info.fps.toFixed(1)} fps   latency ${lat.p50 ?? "–"} / ${lat.p95 ?? "–"} ms   ` +
        `drops ${info.drops}   viewers ${info.viewers}   ${state.connectionState}`;
    } catch (e) { $("stats").textContent = String(e.message || e); }
  }, 1000);
  Puppet.watchFrames(avatar, state);
  window.addEventListener("pagehide", () => { if (state.pc) state.pc.close(); });
  if (state.sessionId && state.token) { $("driver").value = "browser"; }
})();
