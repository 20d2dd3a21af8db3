"""The capture-time stamp: written into pixels, read back after codecs, scaling, mirroring; JS decoder agrees."""

from __future__ import annotations

import base64
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from src.output.timestamp_code import (
    capture_wall_ms,
    crc8,
    read_stamp,
    stamp,
    strip_height,
    wall_ms_now,
)

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "assets" / "portrait.png"


def portrait(size: int = 512) -> np.ndarray:
    img = cv2.imread(str(PORTRAIT))
    assert img is not None
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("value", [0, 1, 123456789, 2**48 - 1, 1_795_300_000_000])
def test_round_trip_exact(value: int) -> None:
    img = portrait()
    stamp(img, value)
    assert read_stamp(img) == value


def test_stamp_touches_only_the_top_strip() -> None:
    img = portrait()
    before = img.copy()
    stamp(img, wall_ms_now())
    sh = strip_height(512)
    assert sh == 32
    assert np.array_equal(img[sh:], before[sh:])
    assert not np.array_equal(img[:sh], before[:sh])


@pytest.mark.parametrize("size", [(512, 512), (256, 256), (128, 128), (300, 200), (1280, 720), (97, 131)])
def test_survives_scaling(size: tuple[int, int]) -> None:
    img = portrait()
    v = wall_ms_now()
    stamp(img, v)
    for interp in (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC):
        assert read_stamp(cv2.resize(img, size, interpolation=interp)) == v


def test_odd_sized_frame_round_trip() -> None:
    img = cv2.resize(portrait(), (333, 257))
    stamp(img, 987654321)
    assert read_stamp(img) == 987654321


def test_mirrored_and_other_layouts() -> None:
    img = portrait()
    v = wall_ms_now()
    stamp(img, v)
    assert read_stamp(np.ascontiguousarray(img[:, ::-1])) == v
    assert read_stamp(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)) == v
    assert read_stamp(cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)) == v
    assert read_stamp(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)) == v
    y_plane = cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420)[:512]  # the luma plane of I420
    assert read_stamp(y_plane) == v


def test_unstamped_and_damaged_frames_read_none() -> None:
    assert read_stamp(portrait()) is None
    assert read_stamp(np.zeros((512, 512, 3), np.uint8)) is None
    assert read_stamp(np.full((512, 512, 3), 255, np.uint8)) is None
    rng = np.random.default_rng(1)
    hits = sum(read_stamp(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)) is not None for _ in range(300))
    assert hits == 0
    img = portrait()
    stamp(img, 424242)
    # Flip one data cell (bit 10 -> cell 10 in row 0): the CRC must reject it.
    img[4:12, 10 * 16 + 4 : 10 * 16 + 12] = 255 - img[8, 10 * 16 + 8]
    assert read_stamp(img) is None


def test_bad_inputs_raise_precise_errors() -> None:
    with pytest.raises(ValueError, match="too small"):
        stamp(np.zeros((32, 32, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="outside"):
        stamp(portrait(), 2**48)
    with pytest.raises(ValueError, match="outside"):
        stamp(portrait(), -1)
    with pytest.raises(TypeError, match="uint8"):
        stamp(np.zeros((128, 128, 3), np.float32), 1)


def test_crc8_known_value() -> None:
    assert crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value


def test_capture_wall_ms_converts_monotonic_time() -> None:
    ts = time.monotonic() - 0.250
    got = capture_wall_ms(ts)
    assert abs((wall_ms_now() - got) - 250) <= 5


def _codec_round_trip(codec: str, bitrate: int, scale_to: int | None) -> tuple[int, int]:
    base = portrait()
    enc = av.CodecContext.create(codec, "w")
    enc.width = enc.height = 512
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, 30)
    enc.bit_rate = bitrate
    enc.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"} if codec == "libvpx" else {
        "preset": "ultrafast", "tune": "zerolatency"}
    dec = av.CodecContext.create("h264" if codec == "libx264" else codec, "r")
    sent: list[int] = []
    ok = total = 0
    v0 = wall_ms_now()
    for i in range(45):
        img = np.roll(base, 3 * i, axis=1)
        sent.append(v0 + 33 * i)
        stamp(img, sent[-1])
        frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        for packet in enc.encode(frame):
            for out in dec.decode(packet):
                image = out.to_ndarray(format="bgr24")
                if scale_to:
                    image = cv2.resize(image, (scale_to, scale_to), interpolation=cv2.INTER_AREA)
                total += 1
                ok += read_stamp(image) in sent
    return ok, total


@pytest.mark.parametrize("codec,bitrate,scale", [("libvpx", 150_000, None), ("libvpx", 300_000, 256),
                                                 ("libx264", 150_000, 384)])
def test_survives_video_codecs(codec: str, bitrate: int, scale: int | None) -> None:
    ok, total = _codec_round_trip(codec, bitrate, scale)
    assert total >= 40
    assert ok == total


def _chromium_missing() -> str | None:
    from src.bench.outputs import chromium_missing

    return chromium_missing()


@pytest.mark.skipif(_chromium_missing() is not None, reason=f"browser decoder test: {_chromium_missing()}")
def test_javascript_decoder_agrees_with_python() -> None:
    from playwright.sync_api import sync_playwright

    from src.bench.outputs import CHROMIUM, CHROMIUM_ARGS

    js = (ROOT / "src" / "output" / "webrtc" / "static" / "stamp.js").read_text()
    cases = []
    for i, (w, h, mirror) in enumerate([(512, 512, False), (512, 512, True), (320, 240, False), (97, 131, False)]):
        img = portrait()
        stamp(img, 1_795_300_000_000 + i)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        if mirror:
            img = np.ascontiguousarray(img[:, ::-1])
        png = base64.b64encode(cv2.imencode(".png", img)[1].tobytes()).decode()
        cases.append({"png": png, "w": w, "h": h, "want": 1_795_300_000_000 + i})
    plain = portrait(256)
    cases.append({"png": base64.b64encode(cv2.imencode(".png", plain)[1].tobytes()).decode(), "w": 256, "h": 256,
                  "want": None})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content("<html><body></body></html>")
            page.add_script_tag(content=js)
            got = page.evaluate(
                """async (cases) => {
                    const out = [];
                    for (const c of cases) {
                        const img = new Image();
                        img.src = "data:image/png;base64," + c.png;
                        await img.decode();
                        const ctx = document.createElement("canvas").getContext("2d", {willReadFrequently: true});
                        out.push(PuppetStamp.readStampFrom(img, c.w, c.h, ctx));
                    }
                    return {values: out, crc: PuppetStamp.crc8([49,50,51,52,53,54,55,56,57])};
                }""",
                cases,
            )
        finally:
            browser.close()
    assert got["crc"] == 0xF4
    assert got["values"] == [c["want"] for c in cases]
