"""A capture-time stamp drawn into a frame's pixels, for glass-to-glass latency.

The pipeline writes each frame's capture time (wall-clock ms) into a strip along
the top of the frame; a consumer (the virtual camera's recording backend, a
browser reading a <canvas>) reads it back and subtracts it from its own wall
clock, as pyvirtualcam's own latency test does.

Layout: 2 rows x 32 columns of cells across the full width, each cell W/32 x H/32
(16 x 16 px at 512 x 512, one codec macroblock), black or white. Cell i (row-major)
carries bit i of: sync 1010, the 48-bit value (MSB first), CRC-8 of its 6 bytes,
sync 1100. Cells are large, grey (no chroma) and placed by fractions of the frame
size, so the code survives VP8/H.264 compression and any scaling. The end sync
differs from the reversed start sync, so a mirrored stamp is recognised as such.
The same decoder in JavaScript: src/output/webrtc/static/stamp.js.
"""

from __future__ import annotations

import time

import numpy as np

COLS = 32
ROWS = 2
VALUE_BITS = 48
SYNC_START = (1, 0, 1, 0)
SYNC_END = (1, 1, 0, 0)
MIN_SIZE_PX = 64  # below this the cells get too small to survive a codec
MIN_CONTRAST = 60.0  # grey levels between the sync cells' black and white


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07, init 0), as in stamp.js."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _bits(value: int) -> list[int]:
    payload = value.to_bytes(VALUE_BITS // 8, "big")
    bits = [(value >> (VALUE_BITS - 1 - i)) & 1 for i in range(VALUE_BITS)]
    check = crc8(payload)
    return [*SYNC_START, *bits, *[(check >> (7 - i)) & 1 for i in range(8)], *SYNC_END]


def _edges(n: int, size: int) -> list[int]:
    """Cell boundaries: floor(i * size / n + 0.5), in integers so stamp.js computes the same."""
    return [(2 * i * size + n) // (2 * n) for i in range(n + 1)]


def strip_height(height: int) -> int:
    """Rows of pixels the stamp covers at the top of a frame of this height."""
    return _edges(COLS, height)[ROWS]


def stamp(image_bgr: np.ndarray, wall_ms: int) -> None:
    """Write `wall_ms` (0 <= wall_ms < 2**48) into the top strip of `image_bgr` in place."""
    if image_bgr.ndim not in (2, 3) or image_bgr.dtype != np.uint8:
        raise TypeError(f"stamp: expected an H x W (x C) uint8 image, got {image_bgr.dtype} {image_bgr.shape}")
    h, w = image_bgr.shape[:2]
    if w < MIN_SIZE_PX or h < MIN_SIZE_PX:
        raise ValueError(f"stamp: frame {w}x{h} is too small; needs at least {MIN_SIZE_PX}x{MIN_SIZE_PX}")
    if not 0 <= wall_ms < 1 << VALUE_BITS:
        raise ValueError(f"stamp: wall_ms {wall_ms} outside 0..2**{VALUE_BITS}-1")
    xs, ys = _edges(COLS, w), _edges(COLS, h)
    for i, bit in enumerate(_bits(int(wall_ms))):
        r, c = divmod(i, COLS)
        image_bgr[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = 255 if bit else 0


def _cell_means(gray: np.ndarray, height: int) -> np.ndarray:
    """Mean of the inner half of every cell (the edges bleed under compression and scaling).

    `gray` is the top strip of a frame `height` pixels high (cells are placed by
    fractions of the full frame).
    """
    w = gray.shape[1]
    xs, ys = _edges(COLS, w), _edges(COLS, height)
    means = np.empty(ROWS * COLS, dtype=np.float64)
    for r in range(ROWS):
        y0, y1 = ys[r], ys[r + 1]
        qy = max((y1 - y0) // 4, 0)
        profile = gray[y0 + qy : max(y1 - qy, y0 + qy + 1)].mean(axis=0)  # one value per column
        for c in range(COLS):
            x0, x1 = xs[c], xs[c + 1]
            qx = max((x1 - x0) // 4, 0)
            means[r * COLS + c] = profile[x0 + qx : max(x1 - qx, x0 + qx + 1)].mean()
    return means


def _decode(means: np.ndarray) -> int | None:
    sync = (*SYNC_START, *SYNC_END)
    sync_vals = np.concatenate([means[:4], means[-4:]])
    white = sync_vals[[i for i, b in enumerate(sync) if b]].mean()
    black = sync_vals[[i for i, b in enumerate(sync) if not b]].mean()
    if white - black < MIN_CONTRAST:
        return None
    bits = (means > (white + black) / 2).astype(np.int64)
    if tuple(bits[:4]) != SYNC_START or tuple(bits[-4:]) != SYNC_END:
        return None
    value = 0
    for b in bits[4 : 4 + VALUE_BITS]:
        value = (value << 1) | int(b)
    check = 0
    for b in bits[4 + VALUE_BITS : 4 + VALUE_BITS + 8]:
        check = (check << 1) | int(b)
    if crc8(value.to_bytes(VALUE_BITS // 8, "big")) != check:
        return None
    return value


def _luma(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.ndim == 3 and image.shape[2] >= 3:
        # Channel order does not matter: the cells are grey (B = G = R).
        return image[:, :, :3].astype(np.float32).mean(axis=2)
    raise TypeError(f"read_stamp: expected an H x W or H x W x 3/4 image, got shape {image.shape}")


def read_stamp(image: np.ndarray) -> int | None:
    """The value written by `stamp`, or None if no intact stamp is found.

    Accepts BGR/RGB/RGBA frames or a single grey/luma plane (the Y plane of I420),
    at any scale, mirrored or not.
    """
    h, w = image.shape[:2]
    if w < COLS or h < COLS:
        return None
    gray = _luma(image[: strip_height(h)])
    value = _decode(_cell_means(gray, h))
    if value is None:  # a mirrored frame (a virtual camera may flip after stamping)
        value = _decode(_cell_means(gray[:, ::-1], h))
    return value


def wall_ms_now() -> int:
    """The current wall-clock time in integer milliseconds (what consumers subtract from)."""
    return int(time.time() * 1000)


def capture_wall_ms(capture_ts: float) -> int:
    """Convert a frame's monotonic `capture_ts` to wall-clock milliseconds."""
    return int((time.time() - (time.monotonic() - capture_ts)) * 1000)
