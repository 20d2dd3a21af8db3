"""The looks in a real headless Chromium: the studio's expression buttons reach the session, and the viewer page of a
session with `animation.background: transparent` draws the person on a transparent canvas (for OBS Browser Source)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from src.bench.outputs import chromium_missing
from tests.support.chromium import launched_chromium
from tests.support.serve import ServeServer, create, http, wait_for

pytestmark = [
    pytest.mark.skipif(chromium_missing() is not None, reason=f"needs Chromium: {chromium_missing()}"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(make_config: Any) -> Iterator[ServeServer]:
    cfg = make_config("serve.max_sessions=3", "serve.session_cpu_cores=0.01", "animation.background=transparent")
    with ServeServer(cfg) as srv:
        yield srv


def viewer_screenshot(browser: Any, url: str, size: int, path: Path | None = None) -> np.ndarray:
    """The viewer page at `url` as an RGBA screenshot with the page background left out (what OBS composites)."""
    ctx = browser.new_context(viewport={"width": size, "height": size})
    page = ctx.new_page()
    page.goto(url)
    try:
        assert wait_for(lambda: page.evaluate("window.puppetcam.frames") > 15, 30), page.evaluate("window.puppetcam.error")
        keyed = page.evaluate("window.puppetcam.keyed && window.puppetcam.keyed.frames") or 0
        if keyed:
            assert wait_for(lambda: page.evaluate("window.puppetcam.keyed.frames") > keyed + 5, 10), "the canvas is drawn"
        png = page.screenshot(omit_background=True, path=str(path) if path else None)
    finally:
        ctx.close()
    rgba = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert rgba is not None and rgba.ndim == 3
    return rgba if rgba.shape[2] == 4 else np.dstack([rgba, np.full(rgba.shape[:2], 255, np.uint8)])


def face_points(rgba: np.ndarray) -> np.ndarray | None:
    """Landmarks (x, y) of the face in the screenshot, found again by MediaPipe over a grey backdrop."""
    from src.capture.face_tracker import FaceTracker

    a = rgba[..., 3:4].astype(np.float32) / 255.0
    over = (rgba[..., :3].astype(np.float32) * a + 128.0 * (1.0 - a)).astype(np.uint8)
    with FaceTracker(static_image_mode=True) as tracker:
        faces = tracker.process(over)
    return faces[0].landmarks[:, :2] if faces else None


def test_studio_expression_buttons_reach_the_session(browser: Any, server: ServeServer) -> None:
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    page.goto(f"{server.base}/")
    page.select_option("#driver", "text")
    page.click("#start")
    assert wait_for(lambda: page.evaluate("window.studio.frames") > 5 or page.evaluate("window.studio.error"), 30)
    assert not page.evaluate("window.studio.error")
    session = server.engine.get(page.evaluate("window.studio.sessionId"))
    page.fill("#expression-intensity", "0.6")
    page.click("button[data-expression=surprise]")
    assert wait_for(lambda: (session.info()["expression"] or {}).get("name") == "surprise", 5), session.info()["expression"]
    assert session.info()["expression"]["intensity"] == 0.6
    assert wait_for(lambda: session.info()["expression"]["shown"] >= 0.59, 5), "the expression eases in on the avatar"
    page.click("button[data-expression=none]")
    assert wait_for(lambda: session.info()["expression"]["name"] == "none", 5)
    assert not page.evaluate("window.studio.error")
    page.click("#end")
    assert wait_for(lambda: server.engine.get(session.id) is None, 10)
    page.context.close()


def test_transparent_viewer_keys_the_background_out(browser: Any, server: ServeServer) -> None:
    status, _, body = create(server.base, driver="none")
    assert status == 201, body
    try:
        info = http("GET", f"{server.base}/api/sessions/{body['id']}", token=body["token"])[2]
        assert info["transparent"] and info["key_color"] == "#00B140"
        rgba = viewer_screenshot(browser, body["viewer_url"] + "&bare=1", 384)
        alpha = rgba[..., 3]
        clear, solid = float((alpha == 0).mean()), float((alpha == 255).mean())
        assert clear > 0.15 and solid > 0.15, f"transparent {clear:.2f}, opaque {solid:.2f} of the page"
        for corner in (alpha[:8, :8], alpha[:8, -8:]):  # beside the head: the keyed background
            assert corner.max() == 0
        pts = face_points(rgba)
        assert pts is not None, "the face is found again in the keyed page"
        h, w = alpha.shape
        xy = np.clip(np.round(pts).astype(int), 0, [w - 1, h - 1])
        on_face = alpha[xy[:, 1], xy[:, 0]]
        assert (on_face == 255).mean() > 0.97, f"face landmarks on opaque pixels: {(on_face == 255).mean():.3f}"
        # no green fringe left: opaque pixels that are the key colour are rare
        b, g, r = (rgba[..., i].astype(int) for i in range(3))
        green = (alpha > 0) & (g > r + 60) & (g > b + 60)
        assert green.mean() < 0.002, f"{green.mean():.4f} of the page is still key green"
        # the same page with ?transparent=0 shows the key colour as sent: opaque everywhere
        plain = viewer_screenshot(browser, body["viewer_url"] + "&bare=1&transparent=0", 192)
        assert plain[..., 3].min() == 255
    finally:
        http("DELETE", f"{server.base}/api/sessions/{body['id']}", token=body["token"])


def test_studio_background_choice_and_keyed_preview(browser: Any, server: ServeServer) -> None:
    """The studio's background: blurred from the start, switched live to transparent (the studio's own preview keys it
    out over a checkerboard) and to a colour (the keying stops)."""
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    page.goto(f"{server.base}/")
    page.select_option("#driver", "none")
    page.select_option("#background", "blur")
    page.click("#start")
    assert wait_for(lambda: page.evaluate("window.studio.frames") > 5 or page.evaluate("window.studio.error"), 30)
    assert not page.evaluate("window.studio.error")
    session = server.engine.get(page.evaluate("window.studio.sessionId"))
    assert session.info()["background"] == "blur", "the choice at creation beats the server's transparent default"
    assert wait_for(lambda: page.evaluate("window.studio.background") == "blur", 5)
    assert page.evaluate("window.studio.keyed") is None and page.is_hidden("#keyed")
    page.select_option("#live-background", "transparent")
    assert wait_for(lambda: session.info()["transparent"], 5)
    assert wait_for(lambda: (page.evaluate("window.studio.keyed && window.studio.keyed.frames") or 0) > 5, 10), \
        "the studio keys its own preview"
    assert page.is_visible("#keyed")
    corner = page.evaluate("""(() => { const c = document.getElementById('keyed');
        return Array.from(c.getContext('2d').getImageData(2, 2, 1, 1).data); })()""")
    assert corner[3] == 0, f"the preview's backdrop is keyed out: {corner}"
    page.fill("#background-color", "#336699")
    page.select_option("#live-background", "color")
    assert wait_for(lambda: session.info()["background"].lower() == "color:#336699", 5), session.info()["background"]
    assert wait_for(lambda: page.evaluate("window.studio.keyed") is None, 5) and page.is_hidden("#keyed")
    assert not page.evaluate("window.studio.error")
    page.click("#end")
    assert wait_for(lambda: server.engine.get(session.id) is None, 10)
    page.context.close()
