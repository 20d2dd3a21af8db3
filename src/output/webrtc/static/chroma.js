// A transparent canvas from a keyed video: `animation.background: transparent` sends the frame over the key colour
// (#00B140; WebRTC's VP8 carries no alpha), and this draws each decoded frame onto a <canvas> with that colour keyed
// out to alpha: soft between two chroma distances (the codec blurs the edge), and the green spill removed (a pixel's
// green is held to its red or blue, whichever is higher: no green fringe on the person's edge; a green shirt greys). The page behind the canvas shows through (an OBS Browser Source composites it over the scene).
// Shared by the serve viewer page and the single-stream WebRTC page.
"use strict";
window.PuppetChroma = (function () {
  function hexRgb(hex) {
    const v = parseInt(String(hex || "#00B140").replace("#", ""), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  // Chroma (Cb, Cr) of an RGB colour (BT.601, 0-255).
  function chroma(r, g, b) {
    return [128 - 0.168736 * r - 0.331264 * g + 0.5 * b, 128 + 0.5 * r - 0.418688 * g - 0.081312 * b];
  }

  // Key `video` onto `canvas` at every decoded frame; `near` / `far`: chroma distances that are fully transparent /
  // fully opaque. Returns { frames, stop() }: frames drawn so far; stop() ends the keying.
  function key(video, canvas, keyHex, near = 40, far = 70) {
    const [kr, kg, kb] = hexRgb(keyHex);
    const [kcb, kcr] = chroma(kr, kg, kb);
    const ctx = canvas.getContext("2d", { willReadFrequently: true, alpha: true });
    const stats = { frames: 0, stopped: false, stop() { stats.stopped = true; } };
    const span = far - near;
    function draw() {
      const w = video.videoWidth, h = video.videoHeight;
      if (!w || !h) return;
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      const img = ctx.getImageData(0, 0, w, h);
      const d = img.data;
      for (let i = 0; i < d.length; i += 4) {
        const r = d[i], g = d[i + 1], b = d[i + 2];
        const dcb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b - kcb;
        const dcr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b - kcr;
        const dist = Math.sqrt(dcb * dcb + dcr * dcr);
        const m = r > b ? r : b;
        if (g > m) d[i + 1] = m;  // despill (as OBS's chroma key does): the edge keeps no green fringe
        if (dist >= far) continue;  // opaque: the person
        let a = (dist - near) / span;
        a = a <= 0 ? 0 : a * a * (3 - 2 * a);  // smoothstep
        d[i + 3] = Math.round(255 * a);
      }
      ctx.putImageData(img, 0, 0);
      stats.frames += 1;
    }
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
      const onFrame = () => { if (stats.stopped) return; draw(); video.requestVideoFrameCallback(onFrame); };
      video.requestVideoFrameCallback(onFrame);
    } else {
      const onTick = () => { if (stats.stopped) return; draw(); requestAnimationFrame(onTick); };
      requestAnimationFrame(onTick);
    }
    return stats;
  }

  return { key, hexRgb, chroma };
})();
