"""The studio page end to end in a real headless Chromium whose camera and microphone are fakes made from the
shared carphone clip and speech: the avatar comes back over one peer connection and follows the clip's face;
controls, say with captions, the viewer link, and a bad upload's message on the page."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from src.bench.outputs import chromium_missing
from tests.support.chromium import launched_chromium
from tests.support.media import ffmpeg
from tests.support.serve import ServeServer, wait_for

pytestmark = [
    pytest.mark.skipif(chromium_missing() is not None, reason=f"needs Chromium: {chromium_missing()}"),
    pytest.mark.slow,
]

CLIP_FPS = 30

GRAB_JS = """
(() => {
  window.grab = [];
  const v = document.getElementById("avatar");
  const c = document.createElement("canvas");
  const ctx = c.getContext("2d");
  let last = 0;
  const cb = (now) => {
    if (now - last >= 60 && window.grab.length < 400 && v.videoWidth) {
      last = now;
      c.width = v.videoWidth; c.height = v.videoHeight;
      ctx.drawImage(v, 0, 0);
      window.grab.push([performance.timeOrigin + now, c.toDataURL("image/jpeg", 0.92)]);
    }
    v.requestVideoFrameCallback(cb);
  };
  v.requestVideoFrameCallback(cb);
})()
"""


@pytest.fixture(scope="module")
def fake_media(carphone: Path, shared_assets: Path, media_dir: Path) -> tuple[Path, Path]:
    y4m = media_dir / "carphone_cam.y4m"
    wav = media_dir / "speech_mic.wav"
    if not y4m.exists():
        ffmpeg("-i", str(carphone), "-vf", f"scale=352:288:flags=lanczos,fps={CLIP_FPS}", "-pix_fmt", "yuv420p", str(y4m))
    if not wav.exists():
        ffmpeg("-i", str(shared_assets / "speech_en.wav"), "-ar", "48000", "-ac", "1", str(wav))
    return y4m, wav


@pytest.fixture(scope="module")
def browser(fake_media: tuple[Path, Path]) -> Iterator[Any]:
    y4m, wav = fake_media
    with launched_chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                           f"--use-file-for-fake-video-capture={y4m}", f"--use-file-for-fake-audio-capture={wav}") as b:
        yield b


@pytest.fixture(scope="module")
def server(make_config: Any) -> Iterator[ServeServer]:
    with ServeServer(make_config("serve.max_sessions=4", "serve.session_cpu_cores=0.01")) as srv:
        yield srv


def _page(browser: Any, url: str) -> Any:
    ctx = browser.new_context(viewport={"width": 1100, "height": 800})
    page = ctx.new_page()
    page.goto(url)
    return page


def _mouth_series(items: list[tuple[float, np.ndarray]]) -> list[tuple[float, float]]:
    from src.capture.face_tracker import FaceTracker
    from src.core.face_mesh import measure

    out = []
    with FaceTracker(static_image_mode=True) as tracker:
        for t, img in items:
            faces = tracker.process(img)
            if faces:
                out.append((t, measure(faces[0].landmarks).mouth_open))
    return out


def best_lag_correlation(avatar: list[tuple[float, float]], sent: list[tuple[float, float]],
                         max_lag_s: float = 1.5) -> tuple[float, float]:
    """The avatar's mouth series against the camera's, both (wall seconds, opening), at the best delay of the
    avatar behind the camera (a little ahead allowed for the two clocks' rounding)."""
    from src.bench.reenactment import pearson

    t = np.array([a for a, _ in avatar])
    y = np.array([b for _, b in avatar])
    ts = np.array([a for a, _ in sent])
    xs = np.array([b for _, b in sent])
    best = (-1.0, 0.0)
    for lag in np.arange(-0.1, max_lag_s, 1.0 / CLIP_FPS):
        ok = (t - lag >= ts[0]) & (t - lag <= ts[-1])
        if ok.sum() < 20:
            continue
        r = pearson(np.interp(t[ok] - lag, ts, xs), y[ok])
        if r == r and r > best[0]:
            best = (float(r), float(lag))
    return best


def test_studio_sends_camera_and_mic_and_the_avatar_follows_the_clip(browser: Any, server: ServeServer,
                                                                    fake_media: tuple[Path, Path]) -> None:
    from src.bench.reenactment import landmarks_series
    from src.core.face_mesh import measure

    page = _page(browser, f"{server.base}/")
    page.click("#start")
    assert wait_for(lambda: page.evaluate("window.studio.frames") > 10 or page.evaluate("window.studio.error"), 40), \
        page.evaluate("window.studio.error")
    assert not page.evaluate("window.studio.error")
    sid = page.evaluate("window.studio.sessionId")
    session = server.engine.get(sid)
    # the server takes the browser's tracks like a webcam and a microphone
    assert wait_for(lambda: session.capture.pushed > 30 and session.mic.received_samples > 48000, 20)
    assert wait_for(lambda: session.pipe.landmarks.tracker is not None and session.info()["fps"] > 5, 10)
    assert page.evaluate("document.getElementById('avatar').srcObject.getAudioTracks().length") == 1
    # the mouth follows the camera for this test (a control on the page)
    page.select_option("#mouth-owner", "webcam")
    assert wait_for(lambda: session.run_state.mouth_owner == "webcam", 5)
    page.click("#neutral")
    page.wait_for_timeout(1500)
    # what the camera sent, as the server received it (wall time), to compare the avatar with: on a busy machine
    # Chromium's fake camera plays the clip slower than real time, so the clip's own timeline is no reference
    sent: list[tuple[float, np.ndarray]] = []
    push = session.capture.push

    def recording_push(image: np.ndarray, capture_ts: float | None = None) -> None:
        if len(sent) < 400:
            sent.append((time.time(), image.copy()))
        push(image, capture_ts)

    session.capture.push = recording_push
    page.evaluate(GRAB_JS)
    page.wait_for_timeout(9000)  # more than two loops of the 4 s clip
    session.capture.push = push
    grabbed = page.evaluate("window.grab")
    images = []
    for t_ms, url in grabbed:
        data = base64.b64decode(url.split(",", 1)[1])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is not None:
            images.append((t_ms / 1000.0, img))
    assert len(images) > 40, f"only {len(images)} frames grabbed in 9 s"
    avatar = _mouth_series(images)
    assert len(avatar) > 0.9 * len(images), "the avatar's face is found again in the returned stream"
    camera = _mouth_series(sent)
    assert len(sent) > 40 and len(camera) > 0.9 * len(sent), "the server receives the clip's face from the camera"
    clip = np.array([measure(lm).mouth_open for lm in landmarks_series(fake_media[0]) if lm is not None])
    assert np.ptp([m for _, m in camera]) > 0.5 * np.ptp(clip), "the camera shows the clip's mouth moving"
    r, lag = best_lag_correlation(avatar, camera)
    info = session.info()
    print(f"\nstudio: mouth-opening correlation {r:.3f} at a delay of {lag:.2f} s over {len(avatar)} frames; "
          f"server fps {info['fps']}, latency {info['latency_ms']}")
    assert r >= 0.8, f"the avatar's mouth does not follow the camera's (best correlation {r:.3f})"
    page.context.close()


def test_studio_controls_say_captions_and_viewer_link(browser: Any, server: ServeServer) -> None:
    page = _page(browser, f"{server.base}/")
    page.select_option("#driver", "text")
    page.click("#start")
    assert wait_for(lambda: page.evaluate("window.studio.frames") > 5 or page.evaluate("window.studio.error"), 30)
    assert not page.evaluate("window.studio.error")
    session = server.engine.get(page.evaluate("window.studio.sessionId"))
    page.select_option("#motion-mode", "absolute")
    page.fill("#pose-gain", "1.5")
    page.dispatch_event("#pose-gain", "change")
    assert wait_for(lambda: session.controls()["motion_mode"] == "absolute" and session.controls()["pose_gain"] == 1.5, 5)
    page.fill("#say-text", "Hello from the studio page.")
    page.click("#say")
    assert wait_for(lambda: page.evaluate("window.studio.captions.filter(m => m.type === 'captions').length") > 0, 15)
    assert wait_for(lambda: page.is_visible("#caption"), 5), "the caption shows over the avatar"
    assert "studio" in page.inner_text("#caption").lower() or page.evaluate("window.studio.captions[0].cues.length") > 0
    link = page.input_value("#viewer-link")
    assert "/view/" in link and "token=" in link and page.evaluate("window.studio.token") not in link
    viewer = _page(browser, link)
    assert wait_for(lambda: viewer.evaluate("window.puppetcam.frames") > 5, 20), viewer.evaluate("window.puppetcam.error")
    assert session.info()["viewers"] >= 2
    viewer.context.close()
    page.click("#interrupt")
    page.click("#end")
    assert wait_for(lambda: server.engine.get(session.id) is None, 10)
    page.context.close()


def test_bad_upload_shows_a_clear_message_on_the_page(browser: Any, server: ServeServer, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    page = _page(browser, f"{server.base}/")
    page.check("input[name=portrait-choice][value=upload]")
    page.set_input_files("#portrait", str(bad))
    page.select_option("#driver", "none")
    page.click("#start")
    assert wait_for(lambda: page.is_visible("#error"), 15)
    assert "portrait: not an image" in page.inner_text("#error")
    assert len(server.engine.list()) == 0 or all(s.spec.driver != "none" for s in server.engine.list())
    page.context.close()
