"""Capture sources: video files through the same cv2 path as webcams, looping, still images, and every bad input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from src.capture import ImageSource, VideoCaptureSource, list_cameras, open_capture, parse_driver, read_image
from src.core.errors import CaptureError, UserError


def _read_all(src, limit: int = 10_000) -> list:
    frames = []
    while len(frames) < limit:
        f = src.read()
        if f is None:
            break
        frames.append(f)
    return frames


def test_parse_driver() -> None:
    assert parse_driver(None) == ("none", None)
    assert parse_driver(" none ") == ("none", None)
    assert parse_driver("webcam") == ("webcam", 0)
    assert parse_driver("webcam:2") == ("webcam", 2)
    assert parse_driver("webcam:/dev/video4") == ("webcam", "/dev/video4")
    assert parse_driver("clip.mp4") == ("file", "clip.mp4")


def test_capture_error_is_a_user_error_and_os_error() -> None:
    assert issubclass(CaptureError, UserError) and issubclass(CaptureError, OSError)


def test_open_none_is_none(make_config) -> None:
    assert open_capture("none", make_config()) is None


def test_video_file_reads_every_frame_with_media_time(make_config, face_video: Path) -> None:
    src = open_capture(str(face_video), make_config(), realtime=False)
    assert isinstance(src, VideoCaptureSource) and not src.live
    assert src.size == (256, 256) and src.fps == pytest.approx(15.0)
    frames = _read_all(src)
    src.close()
    assert len(frames) == 30
    assert [f.index for f in frames] == list(range(30))
    assert [f.media_time_s for f in frames] == pytest.approx([i / 15 for i in range(30)])
    ts = [f.capture_ts for f in frames]
    assert ts == sorted(ts) and all(f.image.shape == (256, 256, 3) and f.image.dtype == np.uint8 for f in frames)


def test_real_clip_frame_count_and_fps(make_config, carphone: Path) -> None:
    src = open_capture(str(carphone), make_config(), realtime=False)
    assert src is not None
    assert src.size == (176, 144) and src.fps == pytest.approx(29.97, abs=0.01)
    frames = _read_all(src)
    src.close()
    assert len(frames) == 120 and src.corrupt_frames == 0


def test_loop_restarts_and_media_time_keeps_increasing(make_config, face_video: Path) -> None:
    src = open_capture(str(face_video), make_config(), realtime=False, loop=True)
    frames = _read_all(src, limit=75)
    src.close()
    assert len(frames) == 75  # 2.5 passes over a 30-frame file, never None
    times = [f.media_time_s for f in frames]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] == pytest.approx(74 / 15)
    assert np.array_equal(frames[30].image, frames[0].image)  # the second pass starts at the first frame


def test_loop_from_config(make_config, face_video: Path) -> None:
    src = open_capture(str(face_video), make_config("capture.loop=true"), realtime=False)
    assert len(_read_all(src, limit=40)) == 40
    src.close()


def test_realtime_file_is_paced_to_its_fps(make_config, face_video: Path) -> None:
    src = open_capture(str(face_video), make_config(), realtime=True)
    t0 = time.monotonic()
    frames = _read_all(src, limit=9)
    elapsed = time.monotonic() - t0
    src.close()
    assert len(frames) == 9
    assert elapsed >= 8 / 15 * 0.9  # 8 periods at 15 fps (a loose lower bound: never faster than the file)


def test_webcam_path_uses_the_camera_code_with_a_file(make_config, face_video: Path) -> None:
    """`webcam:<path>` goes through cv2.VideoCapture exactly as a camera does."""
    src = open_capture(f"webcam:{face_video}", make_config(), realtime=True)
    assert isinstance(src, VideoCaptureSource) and src.is_camera and src.live
    frames = [src.read() for _ in range(10)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames] == list(range(10))
    assert all(f.media_time_s is None for f in frames)  # a camera has no media time
    assert frames[0].image.shape == (256, 256, 3)
    src.close()


def test_webcam_that_stops_delivering_raises_capture_error(make_config, face_video: Path) -> None:
    """A camera that dies (the file behind `webcam:` ends) is a CaptureError naming it, not a hang."""
    src = open_capture(f"webcam:{face_video}", make_config(), realtime=True)
    with pytest.raises(CaptureError, match="stopped delivering frames"):
        for _ in range(100):
            src.read()
    assert src.corrupt_frames > 0
    src.close()


def test_missing_webcam_lists_available_cameras(make_config) -> None:
    cams = list_cameras()
    with pytest.raises(CaptureError) as e:
        open_capture("webcam:7", make_config())
    msg = str(e.value)
    assert "webcam 7" in msg and "\n" not in msg
    if cams:
        assert all(c.split(":")[0] in msg for c in cams)
    else:
        assert "no camera was found" in msg


def test_still_image_source_repeats(make_config, portrait_path: Path, portrait_bgr: np.ndarray) -> None:
    src = open_capture(str(portrait_path), make_config(), realtime=False)
    assert isinstance(src, ImageSource)
    frames = [src.read() for _ in range(5)]
    assert all(f is not None and np.array_equal(f.image, portrait_bgr) for f in frames)
    assert [f.index for f in frames] == list(range(5))
    assert src.size == (512, 512)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "text"])
def test_corrupt_video_is_a_capture_error(make_config, corrupt_videos: dict[str, Path], kind: str) -> None:
    with pytest.raises(CaptureError) as e:
        open_capture(str(corrupt_videos[kind]), make_config())
    msg = str(e.value)
    assert str(corrupt_videos[kind]) in msg and "\n" not in msg


def test_missing_video_is_a_capture_error(make_config, tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="not found"):
        open_capture(str(tmp_path / "nope.mp4"), make_config())


def test_missing_and_unreadable_images(make_config, tmp_path: Path, text_as_png: Path) -> None:
    with pytest.raises(CaptureError, match="not found"):
        open_capture(str(tmp_path / "nope.png"), make_config())
    with pytest.raises(CaptureError, match="cannot be read as an image"):
        open_capture(str(text_as_png), make_config())
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(CaptureError, match="cannot be read"):
        read_image(empty)


def test_corrupt_frames_in_the_middle_are_skipped(make_config, mjpeg_with_corrupt_frames: tuple[Path, int, int]) -> None:
    path, total, corrupt = mjpeg_with_corrupt_frames
    src = open_capture(str(path), make_config(), realtime=False)
    frames = _read_all(src)
    src.close()
    assert len(frames) == total - corrupt
    # Media time keeps the skipped frames' slots: the frame after the gap is at its true position.
    assert frames[10].media_time_s == pytest.approx(15 / 15)


def test_corrupt_frames_are_counted_exactly(make_config, mjpeg_with_corrupt_frames: tuple[Path, int, int]) -> None:
    path, _, corrupt = mjpeg_with_corrupt_frames
    src = open_capture(str(path), make_config(), realtime=False)
    _read_all(src)
    src.close()
    assert src.corrupt_frames == corrupt
