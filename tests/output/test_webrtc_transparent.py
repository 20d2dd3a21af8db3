"""The single-stream WebRTC page with ?transparent=1 keys the key colour (#00B140, what `animation.background:
transparent` sends where WebRTC carries no alpha) out onto a transparent canvas, in a real Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.bench.outputs import ChromiumViewers, SyntheticFrameSource, chromium_missing
from src.core.config import AppConfig
from src.core.frames import KEY_BGR
from src.output.webrtc import WebRTCOutput
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.skipif(chromium_missing() is not None, reason=f"needs Chromium: {chromium_missing()}"),
    pytest.mark.slow,
]


def test_page_keys_the_key_colour_out(make_config: Callable[..., AppConfig], tmp_path: Path) -> None:
    keyed = np.empty((256, 256, 3), np.uint8)
    keyed[:] = KEY_BGR
    cv2.ellipse(keyed, (128, 128), (60, 80), 0, 0, 360, (90, 140, 210), -1)  # a skin-coloured "head" on the key
    cv2.circle(keyed, (128, 128), 20, (30, 30, 30), -1)  # dark hair-like detail: stays opaque too
    image = tmp_path / "keyed.png"
    cv2.imwrite(str(image), keyed)
    out = WebRTCOutput("127.0.0.1:0", make_config(size=256))
    with SyntheticFrameSource(fps=30, size_px=256, image=image, stamp_frames=False, sway_px=0)([out]), \
            ChromiumViewers(out.url + "?transparent=1", 1, bare=True) as viewers:
        viewers.wait_decoding()
        page = viewers.pages[0]
        assert wait_until(lambda: (page.evaluate("puppetcam.keyed.frames") or 0) > 10, 10)
        png = page.screenshot(omit_background=True)  # 640 x 640, the 256 px frame scaled up to fit
    shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert shot.shape[2] == 4
    alpha = shot[..., 3]
    s = 640 / 256
    assert alpha[:40, :40].max() == 0 and alpha[-40:, -40:].max() == 0, "the key colour is transparent"
    for x, y in ((128, 128), (128, 70), (100, 150)):  # the dark centre and the ellipse
        assert alpha[int(y * s), int(x * s)] == 255, (x, y)
    inside = np.zeros((256, 256), np.uint8)
    cv2.ellipse(inside, (128, 128), (55, 75), 0, 0, 360, 1, -1)
    inside = cv2.resize(inside, (640, 640), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert (alpha[inside] == 255).mean() > 0.99 and (alpha[~inside] == 0).mean() > 0.9
