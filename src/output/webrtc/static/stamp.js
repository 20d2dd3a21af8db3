// Reads the capture-time stamp written by src/output/timestamp_code.py (same layout; keep the two in step):
// 2 rows x 32 cells along the top of the frame, each W/32 x H/32; bits: sync 1010, 48-bit wall-clock ms
// (MSB first), CRC-8 (poly 0x07) of its 6 bytes, sync 1100. Grey cells; mirrored frames are read too.
"use strict";
(function () {
  const COLS = 32, ROWS = 2, VALUE_BITS = 48, MIN_CONTRAST = 60;
  const SYNC_START = [1, 0, 1, 0], SYNC_END = [1, 1, 0, 0];

  function edges(n, size) {
    const out = [];
    for (let i = 0; i <= n; i++) out.push(Math.floor((2 * i * size + n) / (2 * n)));
    return out;
  }

  function stripHeight(height) { return edges(COLS, height)[ROWS]; }

  function crc8(bytes) {
    let crc = 0;
    for (const b of bytes) {
      crc ^= b;
      for (let k = 0; k < 8; k++) crc = (crc & 0x80) ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
    return crc;
  }

  // Mean luma of the inner half of every cell; `rgba` holds the top `stripHeight(height)` rows, `width` wide.
  function cellMeans(rgba, width, height, mirror) {
    const xs = edges(COLS, width), ys = edges(COLS, height);
    const means = new Float64Array(ROWS * COLS);
    for (let r = 0; r < ROWS; r++) {
      const y0 = ys[r], y1 = ys[r + 1], qy = Math.floor((y1 - y0) / 4);
      const ya = y0 + qy, yb = Math.max(y1 - qy, ya + 1);
      const profile = new Float64Array(width);
      for (let y = ya; y < yb; y++) {
        let i = y * width * 4;
        for (let x = 0; x < width; x++, i += 4) profile[x] += (rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3;
      }
      if (mirror) profile.reverse();
      for (let c = 0; c < COLS; c++) {
        const x0 = xs[c], x1 = xs[c + 1], qx = Math.floor((x1 - x0) / 4);
        const xa = x0 + qx, xb = Math.max(x1 - qx, xa + 1);
        let sum = 0;
        for (let x = xa; x < xb; x++) sum += profile[x];
        means[r * COLS + c] = sum / ((xb - xa) * (yb - ya));
      }
    }
    return means;
  }

  function decode(means) {
    const sync = SYNC_START.concat(SYNC_END);
    const vals = Array.from(means.slice(0, 4)).concat(Array.from(means.slice(-4)));
    let white = 0, black = 0, nw = 0, nb = 0;
    sync.forEach((b, i) => { if (b) { white += vals[i]; nw++; } else { black += vals[i]; nb++; } });
    white /= nw; black /= nb;
    if (white - black < MIN_CONTRAST) return null;
    const mid = (white + black) / 2;
    const bits = Array.from(means, (m) => (m > mid ? 1 : 0));
    for (let i = 0; i < 4; i++) {
      if (bits[i] !== SYNC_START[i] || bits[bits.length - 4 + i] !== SYNC_END[i]) return null;
    }
    let value = 0;
    for (let i = 4; i < 4 + VALUE_BITS; i++) value = value * 2 + bits[i];
    let check = 0;
    for (let i = 4 + VALUE_BITS; i < 4 + VALUE_BITS + 8; i++) check = check * 2 + bits[i];
    const bytes = [];
    for (let k = VALUE_BITS / 8 - 1; k >= 0; k--) bytes.push(Math.floor(value / 2 ** (8 * k)) % 256);
    return crc8(bytes) === check ? value : null;
  }

  // The stamped wall-clock ms in an RGBA strip, or null.
  function readStampRGBA(rgba, width, height) {
    if (width < COLS || height < COLS) return null;
    const v = decode(cellMeans(rgba, width, height, false));
    return v !== null ? v : decode(cellMeans(rgba, width, height, true));
  }

  // Draw the top strip of `source` (a <video> or <canvas>, `width` x `height`) into `ctx` and read it.
  function readStampFrom(source, width, height, ctx) {
    const sh = stripHeight(height);
    if (ctx.canvas.width !== width || ctx.canvas.height !== sh) { ctx.canvas.width = width; ctx.canvas.height = sh; }
    ctx.drawImage(source, 0, 0, width, sh, 0, 0, width, sh);
    return readStampRGBA(ctx.getImageData(0, 0, width, sh).data, width, height);
  }

  window.PuppetStamp = { readStampRGBA, readStampFrom, stripHeight, crc8 };
})();
