"""One session's trouble stays its own: an animator that throws, a viewer that never reads, a flooding audio
client; sessions made and ended in a loop leave no threads behind."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support.serve import ServeServer, create, http, view, wait_for

BROKEN = "test-broken-animator"


def _unwrapped_factory(config: Any, name: str | None, source: str, *, live: bool) -> Any:
    """Like the default, without the meshwarp fallback (which would hide the failure)."""
    from src.animation import create_animator

    anim = create_animator(name or config.animation.model, config)
    anim.load_model()
    anim.preprocess_source_image(source)
    return anim


@pytest.fixture(scope="module")
def broken_registered() -> Iterator[None]:
    from src.animation import ANIMATORS
    from src.animation.meshwarp import MeshWarpAnimator

    class Broken(MeshWarpAnimator):
        name = BROKEN

        def animate_batch(self, inputs: list[Any]) -> list[np.ndarray]:
            raise RuntimeError("the model exploded")

    ANIMATORS.register(BROKEN, Broken)
    yield
    ANIMATORS._items.pop(BROKEN, None)


def _frames(base: str, s: dict[str, Any]) -> int:
    return int(http("GET", f"{base}/api/sessions/{s['id']}", token=s["token"])[2]["frames"])


def test_an_animator_that_throws_ends_its_session_alone(make_config: Any, broken_registered: None,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from src.serve.engine import LocalEngine

    cfg = make_config("serve.failure_timeout_s=1.0", "serve.session_cpu_cores=0.01")
    caplog.set_level(logging.WARNING, logger="src.serve.app")
    with ServeServer(cfg, LocalEngine(cfg, _unwrapped_factory)) as srv:
        status, _, good = create(srv.base, driver="text")
        assert status == 201
        status, _, bad = create(srv.base, driver="text", animator=BROKEN)
        assert status == 201, bad
        samples = []
        t_end = time.monotonic() + 8
        gone = False
        while time.monotonic() < t_end and not gone:
            samples.append((time.monotonic(), _frames(srv.base, good)))
            gone = http("GET", f"{srv.base}/api/sessions/{bad['id']}", token=bad["token"])[0] == 404
            time.sleep(0.25)
        assert gone, "the failing session did not end"
        assert any("the model exploded" in r.getMessage() and bad["id"] in r.getMessage() for r in caplog.records)
        time.sleep(1.0)
        samples.append((time.monotonic(), _frames(srv.base, good)))
        # the healthy one kept producing frames the whole time, at its rate
        (t0, f0), (t1, f1) = samples[0], samples[-1]
        assert (f1 - f0) / (t1 - t0) > 15, samples
        assert all(b[1] >= a[1] for a, b in zip(samples, samples[1:], strict=False))
        assert http("GET", f"{srv.base}/api/sessions/{good['id']}", token=good["token"])[2]["state"] == "running"
        assert 'puppetcam_serve_sessions_ended_total{reason="failed"} 1' in http("GET", f"{srv.base}/metrics")[2]


@pytest.fixture
def server(make_config: Any) -> Iterator[ServeServer]:
    cfg = make_config("serve.session_cpu_cores=0.01", "output.webrtc.peer_timeout_s=2")
    with ServeServer(cfg) as srv:
        yield srv


def test_a_viewer_that_never_reads_is_dropped_and_others_keep_receiving(server: ServeServer) -> None:
    from tests.output.test_webrtc_server import make_offer

    status, _, s = create(server.base, driver="text")
    assert status == 201
    url = f"{server.base}/api/sessions/{s['id']}"
    # a client that sends an offer and then never connects nor reads
    status, _, _ = http("POST", f"{url}/offer", {"type": "offer", "sdp": make_offer()}, token=s["viewer_token"])
    assert status == 200
    assert http("GET", url, token=s["token"])[2]["viewers"] == 1
    got = asyncio.run(view(server.base, s["id"], s["viewer_token"], 5.0))
    assert got.status == 200 and got.frames > 60, got.frames  # the reading viewer is unaffected
    assert wait_for(lambda: http("GET", url, token=s["token"])[2]["viewers"] == 0, 10)
    assert http("GET", url, token=s["token"])[2]["state"] == "running"


def test_a_flooding_audio_client_is_bounded(server: ServeServer) -> None:
    import aiohttp

    status, _, s = create(server.base, driver="audio")
    assert status == 201
    status, _, other = create(server.base, driver="text")
    assert status == 201
    f0, t0 = _frames(server.base, other), time.monotonic()

    async def flood() -> None:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(f"{server.base}/api/sessions/{s['id']}/audio?rate=48000&token={s['token']}") as ws:
                noise = (np.random.default_rng(0).normal(0, 0.1, 48000) * 32767).astype("<i2").tobytes()
                for _ in range(30):  # 30 s of audio at once
                    await ws.send_bytes(noise)
                await asyncio.sleep(0.5)

    asyncio.run(flood())
    info = http("GET", f"{server.base}/api/sessions/{s['id']}", token=s["token"])[2]
    assert info["audio_buffer_ms"] <= 1000.0 + 1e-6 and info["state"] == "running"
    time.sleep(0.5)
    assert (_frames(server.base, other) - f0) / (time.monotonic() - t0) > 15


def test_made_and_ended_sessions_leave_no_threads(server: ServeServer) -> None:
    def names() -> list[str]:
        return sorted(t.name for t in threading.enumerate())

    status, _, s = create(server.base, driver="browser")  # warm up (first imports, caches)
    http("DELETE", f"{server.base}/api/sessions/{s['id']}", token=s["token"])
    time.sleep(0.5)
    baseline = len(threading.enumerate())
    for _ in range(8):
        status, _, s = create(server.base, driver="browser")
        assert status == 201
        got = asyncio.run(view(server.base, s["id"], s["viewer_token"], 0.5))
        assert got.status == 200
        assert http("DELETE", f"{server.base}/api/sessions/{s['id']}", token=s["token"])[0] == 204
    assert wait_for(lambda: len(threading.enumerate()) <= baseline + 1, 10), names()
