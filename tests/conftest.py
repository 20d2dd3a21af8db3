"""Shared fixtures: paths to real media, media made with ffmpeg, a tmp avatar cache, the CLI runner.

Nothing here writes to ~/.cache: every config built by these fixtures (and every
CLI run through `run_cli`) points `cache.dir` at a session-scoped temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.media import ffmpeg, rotate_image, write_video
from tests.support.paths import PORTRAIT, ROOT, SHARED_ASSETS, TEST_SIZE

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("GLOG_minloglevel", "2")


# -- isolation --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _virtual_camera_backends_restored() -> Iterator[None]:
    """A test that registers a recording virtual-camera backend must not leave it for the next tests:
    pyvirtualcam's registry is global, and `--output vcam` without a backend tries every registered one."""
    import pyvirtualcam

    saved = dict(pyvirtualcam.camera.BACKENDS)
    yield
    pyvirtualcam.camera.BACKENDS.clear()
    pyvirtualcam.camera.BACKENDS.update(saved)


# -- paths ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    """/work/shared/assets (real media that the project may not ship); skips the test when absent."""
    if not SHARED_ASSETS.is_dir():
        pytest.skip(f"shared test media not found at {SHARED_ASSETS} (needs ../shared/assets next to the repo)")
    return SHARED_ASSETS


@pytest.fixture(scope="session")
def carphone(shared_assets: Path) -> Path:
    """The real 4 s, 176x144, 29.97 fps talking-face clip (120 frames)."""
    p = shared_assets / "driver_carphone.mp4"
    if not p.is_file():
        pytest.skip(f"{p} not found (shared test media)")
    return p


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    assert PORTRAIT.is_file(), f"the bundled default avatar {PORTRAIT} is missing"
    return PORTRAIT


@pytest.fixture(scope="session")
def portrait_bgr(portrait_path: Path) -> np.ndarray:
    img = cv2.imread(str(portrait_path), cv2.IMREAD_COLOR)
    assert img is not None
    return img


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The avatar cache for the whole session (never ~/.cache)."""
    return tmp_path_factory.mktemp("avatar_cache")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


# -- config -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_config(cache_dir: Path) -> Callable[..., object]:
    """make_config("pipeline.fps=15", ...) -> AppConfig with the tmp cache and 256 px output."""
    from src.core.config import load_config

    def make(*overrides: str, size: int = TEST_SIZE):
        return load_config(overrides=[f"cache.dir={cache_dir}", f"animation.output_size_px={size}", *overrides])

    return make


@pytest.fixture(scope="session")
def portrait_animator(make_config, portrait_path: Path):
    """A prepared meshwarp animator on the bundled portrait at 256 px (shared: do not mutate its config)."""
    from src.animation import create_animator

    anim = create_animator("meshwarp", make_config())
    anim.load_model()
    anim.preprocess_source_image(str(portrait_path))
    return anim


# -- media made with ffmpeg --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def face_video(media_dir: Path, portrait_bgr: np.ndarray) -> Path:
    """30 frames (2 s at 15 fps, 256x256) of the portrait tilting its head: a face in every frame."""
    small = cv2.resize(portrait_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    frames = [rotate_image(small, 8.0 * np.sin(2 * np.pi * i / 30), (110, 65)) for i in range(30)]
    return write_video(media_dir / "face_tilt.mp4", frames, fps=15)


@pytest.fixture(scope="session")
def face_blank_face_video(media_dir: Path, portrait_bgr: np.ndarray) -> Path:
    """15 fps, 256x256: 15 frames with the face, 20 blank grey frames (1.33 s), 15 frames with the face."""
    small = cv2.resize(portrait_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    blank = np.full_like(small, 128)
    frames = [small] * 15 + [blank] * 20 + [rotate_image(small, -10.0, (110, 65))] * 15
    return write_video(media_dir / "face_blank_face.mp4", frames, fps=15)


@pytest.fixture(scope="session")
def noface_video(media_dir: Path) -> Path:
    """2 s of ffmpeg's testsrc at 15 fps, 160x120: no face anywhere."""
    p = media_dir / "testsrc.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=15", "-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(p))
    return p


@pytest.fixture(scope="session")
def noface_image(media_dir: Path) -> Path:
    p = media_dir / "testsrc.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=1", "-frames:v", "1", str(p))
    return p


@pytest.fixture(scope="session")
def blank_image(media_dir: Path) -> Path:
    p = media_dir / "blank.png"
    cv2.imwrite(str(p), np.full((240, 320, 3), 200, np.uint8))
    return p


@pytest.fixture(scope="session")
def text_as_png(media_dir: Path) -> Path:
    p = media_dir / "not_an_image.png"
    p.write_text("this is a text file, not a PNG\n")
    return p


@pytest.fixture(scope="session")
def two_faces_image(media_dir: Path, portrait_path: Path) -> Path:
    """The portrait's head twice: 300 px on the left, 200 px on the right (500x300)."""
    p = media_dir / "two_faces.png"
    ffmpeg("-i", str(portrait_path), "-filter_complex",
           "[0]crop=300:300:80:0[a];[0]crop=300:300:80:0,scale=200:200,pad=200:300:0:50[b];[a][b]hstack", str(p))
    return p


@pytest.fixture(scope="session")
def corrupt_videos(media_dir: Path, face_video: Path) -> dict[str, Path]:
    """Files that are not decodable videos: truncated to its header, random bytes, a text file named .mp4."""
    data = face_video.read_bytes()
    trunc = media_dir / "truncated.mp4"
    trunc.write_bytes(data[:2000])
    rng = np.random.default_rng(7)
    garbage = media_dir / "garbage.mp4"
    garbage.write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    text = media_dir / "text.mp4"
    text.write_text("not a video\n")
    return {"truncated": trunc, "garbage": garbage, "text": text}


@pytest.fixture(scope="session")
def mjpeg_with_corrupt_frames(media_dir: Path) -> tuple[Path, int, int]:
    """An MJPEG AVI (30 frames, 15 fps) whose frames 10..14 have their JPEG data zeroed: (path, total, corrupt)."""
    clean = media_dir / "mjpeg_clean.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=15", "-t", "2", "-c:v", "mjpeg", "-q:v", "3", str(clean))
    data = bytearray(clean.read_bytes())
    sois = [m.start() for m in re.finditer(b"\xff\xd8\xff", data)]
    assert len(sois) == 30
    for k in range(10, 15):
        data[sois[k] : sois[k + 1] - 8] = bytes(sois[k + 1] - 8 - sois[k])
    bad = media_dir / "mjpeg_corrupt.avi"
    bad.write_bytes(bytes(data))
    return bad, 30, 5


@pytest.fixture(scope="session")
def carphone_scaled(carphone: Path, media_dir: Path) -> Path:
    """The carphone clip scaled to 352x288 (same frames, same fps)."""
    p = media_dir / "carphone_352.mp4"
    ffmpeg("-i", str(carphone), "-vf", "scale=352:288:flags=lanczos", "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", str(p))
    return p


@pytest.fixture(scope="session")
def carphone_first_frame(carphone_scaled: Path, media_dir: Path) -> Path:
    p = media_dir / "carphone_first.png"
    ffmpeg("-i", str(carphone_scaled), "-frames:v", "1", str(p))
    return p


# -- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def run_cli(cache_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """run_cli("render", "--output", ...) runs `python main.py` in the repo with the tmp cache and 256 px output.

    `--set` overrides go right after the command; pass size=None to keep the configured size.
    `env` adds variables; with replace_env=True it is the whole environment.
    """

    def run(command: str, *args: str, size: int | None = TEST_SIZE, env: dict[str, str] | None = None,
            replace_env: bool = False, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        sets = ["--set", f"cache.dir={cache_dir}"]
        if size is not None:
            sets += ["--set", f"animation.output_size_px={size}"]
        full_env = dict(env or {}) if replace_env else {**os.environ, **(env or {})}
        full_env.pop("PYTHONPATH", None)
        cmd = [sys.executable, str(ROOT / "main.py"), command, *sets, *args]
        return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)

    return run


# -- a display ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """Start `Xvfb :99` for the session and yield the display name; skip when Xvfb is not installed."""
    exe = shutil.which("Xvfb") or ("/usr/bin/Xvfb" if Path("/usr/bin/Xvfb").exists() else None)
    if exe is None:
        pytest.skip("Xvfb not installed (Debian package xvfb)")
    display = None
    proc = None
    for num in range(99, 110):
        if Path(f"/tmp/.X11-unix/X{num}").exists() or Path(f"/tmp/.X{num}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{num}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if Path(f"/tmp/.X11-unix/X{num}").exists():
                display = f":{num}"
                break
            time.sleep(0.05)
        if display:
            break
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(5)
        proc = None
    if display is None or proc is None:
        pytest.skip("could not start Xvfb")
    try:
        yield display
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
