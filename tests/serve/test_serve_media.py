"""`serve` sessions end to end over real WebRTC (an aiortc viewer): text to speech with the mouth, captions
and interrupt; streamed PCM through the jitter buffer; isolation of a failing session."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support.paths import ROOT
from tests.support.serve import ServeServer, create, first_loud, http, view, wait_for


@pytest.fixture(scope="module")
def server(make_config: Any) -> Iterator[ServeServer]:
    with ServeServer(make_config("serve.max_sessions=3", "serve.session_cpu_cores=0.01")) as srv:
        yield srv


def _session(server: ServeServer, driver: str) -> dict[str, Any]:
    status, _, body = create(server.base, driver=driver)
    assert status == 201, body
    return body


def _mouth_opening(images: list[tuple[float, np.ndarray]]) -> list[tuple[float, float]]:
    from src.capture.face_tracker import FaceTracker
    from src.core.face_mesh import measure

    out = []
    with FaceTracker(static_image_mode=True) as tracker:
        for t, img in images:
            faces = tracker.process(img)
            if faces:
                out.append((t, measure(faces[0].landmarks).mouth_open))
    return out


class PcmTap:
    """Listens to a session's voice as the viewers get it (16 kHz blocks stamped with capture time)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[float, float]] = []  # (capture ts, rms)
        self.lock = threading.Lock()

    def __call__(self, ts: float, x: np.ndarray) -> None:
        with self.lock:
            self.blocks.append((ts, float(np.sqrt(np.mean(np.square(x))))))

    def loud_after(self, t: float, level: float = 0.01) -> list[float]:
        with self.lock:
            return [ts for ts, r in self.blocks if ts >= t and r > level]


def test_say_reaches_the_viewer_with_voice_moving_mouth_and_captions(server: ServeServer) -> None:
    s = _session(server, "text")
    said: dict[str, float] = {}

    def say() -> None:
        time.sleep(1.0)  # a second of silence first: the mouth's resting state
        said["t"] = time.monotonic()
        status, _, body = http("POST", f"{server.base}/api/sessions/{s['id']}/say",
                               {"text": "Hello, I am the avatar, and I am speaking to you now.", "voice": "en-us"},
                               token=s["token"])
        assert status == 202 and body["queued"] >= 1

    got = asyncio.run(view(server.base, s["id"], s["viewer_token"], 4.5, keep_images=400, on_connected=say))
    http("DELETE", f"{server.base}/api/sessions/{s['id']}", token=s["token"])
    assert got.status == 200, got.error
    assert got.frames > 60, f"only {got.frames} frames in ~5 s"
    t_say = said["t"]
    t_loud = first_loud(got.audio, t_say)
    assert t_loud is not None, "the voice never reached the viewer"
    assert t_loud - t_say < 3.0
    assert max((float(np.sqrt(np.mean(x**2))) for t, x in got.audio if t < t_say - 0.1), default=0.0) < 0.01
    captions = [m for _, m in got.messages if m.get("type") == "captions"]
    assert captions and "avatar" in " ".join(c["text"] for c in captions[0]["cues"])
    assert all(c["end_ms"] > c["start_ms"] >= 0 for c in captions[0]["cues"])
    opening = _mouth_opening(got.images)
    before = [o for t, o in opening if t < t_say]
    during = [o for t, o in opening if t_loud <= t <= t_loud + 2.0]
    assert len(before) > 5 and len(during) > 10
    assert max(during) > max(before) + 0.05, (max(before), max(during))


def test_interrupt_stops_speech_and_closes_the_mouth(server: ServeServer) -> None:
    s = _session(server, "text")
    session = server.engine.get(s["id"])
    tap = PcmTap()
    session.audio.add_pcm_listener(tap)
    url = f"{server.base}/api/sessions/{s['id']}"
    long_text = "This is a long sentence that keeps going so that there is time to interrupt it. " * 4
    assert http("POST", f"{url}/say", {"text": long_text}, token=s["token"])[0] == 202
    assert http("POST", f"{url}/say", {"text": "And this one is queued after it."}, token=s["token"])[0] == 202
    assert wait_for(lambda: session.speaker.first_sample_at is not None, 10)
    time.sleep(0.8)
    assert tap.loud_after(time.monotonic() - 0.5), "speaking before the interrupt"
    status, _, body = http("POST", f"{url}/interrupt", token=s["token"])
    t_done = time.monotonic()
    assert status == 200 and body["interrupted"]
    time.sleep(0.8)
    # nothing the voice produced after the interrupt answered was loud, and the queue is empty
    assert tap.loud_after(t_done) == []
    info = http("GET", url, token=s["token"])[2]
    assert info["tts_queue"] == 0 and not info["speaking"]
    now = time.monotonic()
    assert session.pipe.animate.mouth.mouth_at(now).open < 0.05
    # it speaks again afterwards
    assert http("POST", f"{url}/say", {"text": "Back again."}, token=s["token"])[0] == 202
    assert wait_for(lambda: tap.loud_after(t_done + 0.8), 10)
    http("DELETE", url, token=s["token"])


def _stream(base: str, sid: str, token: str, pcm16: np.ndarray, rate: int, chunk_s: float = 0.02,
            then: str | None = None) -> None:
    import aiohttp

    async def go() -> None:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(f"{base}/api/sessions/{sid}/audio?rate={rate}&token={token}") as ws:
                n = int(rate * chunk_s)
                t0 = time.monotonic()
                for i in range(0, len(pcm16), n):
                    await ws.send_bytes(pcm16[i : i + n].astype("<i2").tobytes())
                    wait = t0 + (i + n) / rate - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if then:
                    await ws.send_str(json.dumps({"type": then}))
                await asyncio.sleep(0.3)

    asyncio.run(go())


def test_streamed_pcm_is_spoken_and_an_underrun_closes_the_mouth(server: ServeServer) -> None:
    from src.audio import decode_audio

    s = _session(server, "audio")
    session = server.engine.get(s["id"])
    tap = PcmTap()
    session.audio.add_pcm_listener(tap)
    speech = decode_audio(ROOT / "assets" / "speech_en.wav", 24000)[: 24000 * 3]
    pcm = np.clip(speech * 32767, -32768, 32767).astype(np.int16)
    opens: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = time.monotonic()
            opens.append((now, session.pipe.animate.mouth.mouth_at(now).open))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    _stream(server.base, s["id"], s["token"], pcm, 24000)
    t_end = time.monotonic()
    frames_then = http("GET", f"{server.base}/api/sessions/{s['id']}", token=s["token"])[2]["frames"]
    time.sleep(1.0)
    stop.set()
    sampler.join()
    info = http("GET", f"{server.base}/api/sessions/{s['id']}", token=s["token"])[2]
    assert len(tap.loud_after(t0)) > 50, "the streamed voice reached the session's audio"
    assert max(o for t, o in opens if t0 <= t <= t_end) > 0.2, "the mouth opened with the voice"
    # the sender went quiet without "end": an underrun; the mouth closes and the picture goes on
    assert max(o for t, o in opens if t >= t_end + 0.7) < 0.05
    assert info["audio_underruns"] >= 1 and info["frames"] > frames_then + 10 and info["state"] == "running"
    http("DELETE", f"{server.base}/api/sessions/{s['id']}", token=s["token"])


def test_end_message_plays_a_short_tail_below_the_jitter_target(server: ServeServer) -> None:
    s = _session(server, "audio")
    session = server.engine.get(s["id"])
    tap = PcmTap()
    session.audio.add_pcm_listener(tap)
    t = np.arange(int(16000 * 0.03)) / 16000  # 30 ms: below the 60 ms target, played only because of "end"
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    t0 = time.monotonic()
    _stream(server.base, s["id"], s["token"], tone, 16000, chunk_s=0.03, then="end")
    assert wait_for(lambda: tap.loud_after(t0), 3)
    http("DELETE", f"{server.base}/api/sessions/{s['id']}", token=s["token"])


def test_ending_a_session_closes_its_audio_socket(server: ServeServer) -> None:
    import aiohttp

    s = _session(server, "audio")

    async def go() -> tuple[int | None, str]:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(f"{server.base}/api/sessions/{s['id']}/audio?rate=16000&token={s['token']}") as ws:
                await ws.send_bytes(bytes(640))
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: http("DELETE", f"{server.base}/api/sessions/{s['id']}", token=s["token"]))
                msg = await ws.receive(timeout=10)
                return msg.data if msg.type == aiohttp.WSMsgType.CLOSE else None, str(msg.extra or "")

    code, reason = asyncio.run(go())
    assert code == 1001 and "session ended (deleted)" in reason
