// Shared by the studio and viewer pages: API calls with a token, a non-trickle WebRTC offer, captions, stats.
"use strict";
window.Puppet = (function () {
  function headers(token, extra) {
    const h = Object.assign({}, extra || {});
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  async function api(method, path, token, body) {
    const opts = { method, headers: headers(token), cache: "no-store" };
    if (body instanceof FormData) opts.body = body;
    else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    const resp = await fetch(path, opts);
    const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = new Error(data.error || `${resp.status} ${resp.statusText}`);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  function waitIceGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(done, timeoutMs);
    });
  }

  // One peer connection: `send` is a MediaStream to send (studio) or null (viewer). Calls onTrack, onMessage.
  async function connect(sessionId, token, role, send, handlers) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    if (send) {
      for (const track of send.getTracks()) pc.addTransceiver(track, { direction: "sendrecv", streams: [send] });
      if (!send.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
    } else {
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    const channel = pc.createDataChannel("captions");
    channel.onmessage = (ev) => { try { handlers.onMessage(JSON.parse(ev.data)); } catch (e) { /* not ours */ } };
    pc.ontrack = (ev) => handlers.onTrack(ev.track);
    pc.onconnectionstatechange = () => handlers.onState && handlers.onState(pc.connectionState);
    await pc.setLocalDescription(await pc.createOffer());
    await waitIceGathering(pc, 3000);
    const answer = await api("POST", `/api/sessions/${sessionId}/offer`, token,
                             { type: "offer", sdp: pc.localDescription.sdp, role });
    await pc.setRemoteDescription(answer);
    return pc;
  }

  // Caption cues: shown at their times (relative to when the message arrives), each hidden at its end.
  function captions(element, enabled) {
    let timers = [];
    return {
      show(msg) {
        if (msg.type === "interrupt") { this.clear(); return; }
        if (msg.type !== "captions" || !enabled()) return;
        for (const cue of msg.cues || []) {
          timers.push(setTimeout(() => { element.textContent = cue.text; element.hidden = false; }, cue.start_ms));
          timers.push(setTimeout(() => { if (element.textContent === cue.text) element.hidden = true; }, cue.end_ms));
        }
      },
      clear() { timers.forEach(clearTimeout); timers = []; element.hidden = true; },
    };
  }

  // Decoded frames counted in the page (tests and benchmarks read window.puppetcam).
  function watchFrames(video, state) {
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    const onFrame = (now, meta) => {
      state.frames += 1;
      if (state.firstFrameAt === null) state.firstFrameAt = performance.timeOrigin + now;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  return { api, connect, captions, watchFrames, headers };
})();
