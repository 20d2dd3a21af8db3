"""The WebRTC preview server without a browser: routes, bad input, tokens, limits, ports, shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from src.core.config import AppConfig
from src.core.errors import OutputError
from src.core.frames import RenderedFrame
from src.core.runtime.metrics import PipelineMetrics
from src.output import OUTPUTS, PipelineControls, create_output
from src.output.webrtc import WebRTCOutput
from src.output.webrtc.auth import is_loopback, parse_host_port
from src.output.webrtc.server import answer_video_codec


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def post_json(url: str, data: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    status, raw, _ = http("POST", url, body, headers)
    return status, json.loads(raw)


def make_offer(audio: bool = True) -> str:
    """A real SDP offer from an aiortc client that then goes away (it never connects)."""

    async def offer() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        if audio:
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(offer())


def webrtc_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("webrtc")]


_make_config: Callable[..., AppConfig] | None = None


@pytest.fixture(autouse=True)
def _conftest_config(make_config: Callable[..., AppConfig]) -> None:
    global _make_config
    _make_config = make_config


def config(*overrides: str) -> AppConfig:
    """conftest's make_config (its temporary cache), at the configured 512 px output."""
    assert _make_config is not None
    return _make_config(*overrides, size=512)


@pytest.fixture
def server() -> Any:
    out = WebRTCOutput("127.0.0.1:0", config("output.webrtc.peer_timeout_s=2", "output.webrtc.max_viewers=2"))
    ready = threading.Event()
    out.bind_controls(PipelineControls(metrics=PipelineMetrics(), ready=ready.is_set))
    out.open(512, 512, 30)
    out.ready_flag = ready  # type: ignore[attr-defined]
    base = out.url.rstrip("/")
    yield out, base
    out.close()


def test_registered_and_created_from_the_spec() -> None:
    assert "webrtc" in OUTPUTS
    out = create_output("webrtc:127.0.0.1:9123", config())
    assert isinstance(out, WebRTCOutput) and (out.host, out.port) == ("127.0.0.1", 9123)


@pytest.mark.parametrize(
    "arg,want",
    [(None, ("127.0.0.1", 8080)), ("9000", ("127.0.0.1", 9000)), ("0.0.0.0:81", ("0.0.0.0", 81)),
     ("localhost", ("localhost", 8080)), ("[::1]:8443", ("::1", 8443)), (":8090", ("127.0.0.1", 8090))],
)
def test_host_port_spec(arg: str | None, want: tuple[str, int]) -> None:
    assert parse_host_port(arg, "127.0.0.1", 8080) == want


@pytest.mark.parametrize("arg", ["127.0.0.1:http", "127.0.0.1:70000", "[::1:80"])
def test_bad_host_port_spec_is_a_user_error(arg: str) -> None:
    with pytest.raises(OutputError, match="webrtc"):
        parse_host_port(arg, "127.0.0.1", 8080)


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.5.5.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.2") and not is_loopback("example.org")


def test_page_health_ready_and_static(server: Any) -> None:
    out, base = server
    status, body, headers = http("GET", base + "/")
    assert status == 200 and b"<video" in body and "text/html" in headers["Content-Type"]
    for name in ("app.js", "stamp.js", "style.css"):
        assert http("GET", f"{base}/static/{name}")[0] == 200
    assert http("GET", base + "/static/../server.py")[0] == 404
    assert http("GET", base + "/static/secret.py")[0] == 404
    status, body, _ = http("GET", base + "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert http("GET", base + "/health/ready")[0] == 503  # models not loaded / no first frame yet
    out.ready_flag.set()
    assert http("GET", base + "/health/ready")[0] == 200


def test_stats_and_prometheus_metrics(server: Any) -> None:
    out, base = server
    image = np.zeros((512, 512, 3), np.uint8)
    for i in range(5):
        out.write(RenderedFrame(image=image, capture_ts=time.monotonic() - 0.040, index=i))
        time.sleep(0.02)
    status, body, _ = http("GET", base + "/stats")
    stats = json.loads(body)
    assert status == 200 and stats["frames"] == 5 and stats["viewers"] == 0
    assert 35 <= stats["latency_ms"]["p50"] <= 80
    status, body, headers = http("GET", base + "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? (-?[0-9.e+]+|NaN)$')
    for line in text.strip().splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert "puppetcam_frames_total 5" in text
    assert "puppetcam_webrtc_viewers 0" in text
    assert re.search(r'puppetcam_latency_ms\{quantile="0.95"\} [0-9.]+', text)


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"type": "answer", "sdp": "v=0"}).encode(), "must be \"offer\""),
        (json.dumps({"type": "offer"}).encode(), "'sdp' must be"),
        (json.dumps({"type": "offer", "sdp": 42}).encode(), "'sdp' must be"),
        (json.dumps({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}).encode(), "no video"),
        (json.dumps({"type": "offer", "sdp": "v=0\r\nm=video garbage\r\na=rtpmap:x\r\n"}).encode(), "malformed SDP"),
    ],
)
def test_malformed_offers_get_400_with_a_reason(server: Any, body: bytes, reason: str) -> None:
    out, base = server
    status, answer = post_json(base + "/offer", body)
    assert status == 400
    assert reason in answer["error"]
    assert out.viewer_count == 0


def test_oversized_offer_gets_413(server: Any) -> None:
    _, base = server
    status, answer = post_json(base + "/offer", {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000})
    assert status == 413 and "max_offer_bytes" in answer["error"]


def test_viewer_limit_and_never_connected_peer_is_closed(server: Any) -> None:
    out, base = server
    offer = make_offer()
    for _ in range(2):
        status, answer = post_json(base + "/offer", {"type": "offer", "sdp": offer})
        assert status == 200 and answer["type"] == "answer" and "m=video" in answer["sdp"]
    assert out.viewer_count == 2
    status, answer = post_json(base + "/offer", {"type": "offer", "sdp": offer})
    assert status == 503 and "max_viewers" in answer["error"]
    # The clients went away without connecting: the watchdog frees both (peer_timeout_s=2).
    deadline = time.monotonic() + 8
    while out.viewer_count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert out.viewer_count == 0
    assert out.stats()["viewers_total"] == 2


def test_vp8_is_preferred_in_the_answer(server: Any) -> None:
    _, base = server
    status, answer = post_json(base + "/offer", {"type": "offer", "sdp": make_offer(audio=False)})
    assert status == 200
    video = answer["sdp"].split("m=video")[1]
    first_pt = video.split("\r\n")[0].split()[2]  # " PORT UDP/TLS/RTP/SAVPF PT PT ..."
    assert re.search(rf"a=rtpmap:{first_pt} VP8/90000", video)


def test_answer_video_codec() -> None:
    sdp = "v=0\r\nm=audio 9 UDP 111\r\na=rtpmap:111 opus/48000/2\r\nm=video 9 UDP/TLS/RTP/SAVPF 97 99\r\n" \
          "a=rtpmap:99 H264/90000\r\na=rtpmap:97 VP8/90000\r\n"
    assert answer_video_codec(sdp) == "VP8"
    assert answer_video_codec(sdp.replace("SAVPF 97 99", "SAVPF 99 97")) == "H264"
    assert answer_video_codec("v=0\r\n") is None


def test_configured_token_is_enforced_on_loopback() -> None:
    out = WebRTCOutput("127.0.0.1:0", config("output.webrtc.token=s3cret"))
    out.open(512, 512, 30)
    try:
        base = f"http://127.0.0.1:{out.port}"
        garbage = {"type": "offer", "sdp": "v=0\r\nm=video garbage\r\n"}
        assert post_json(base + "/offer", garbage)[0] == 403
        assert post_json(base + "/offer", garbage, token="wrong")[0] == 403
        assert post_json(base + "/offer", garbage, token="s3cret")[0] == 400  # past the token check
        status, _, _ = http("POST", base + "/offer?token=s3cret", json.dumps(garbage).encode(),
                            {"Content-Type": "application/json"})
        assert status == 400
        status, body, _ = http("POST", base + "/offer?token=s3cret", json.dumps(garbage).encode(),
                               {"Content-Type": "text/plain"})  # what a cross-site form could send
        assert status == 415 and b"application/json" in body
        assert http("GET", base + "/metrics")[0] == 403
        assert http("GET", base + "/metrics?token=s3cret")[0] == 200
        status, body, _ = http("GET", base + "/stats")
        assert status == 403 and "token" in json.loads(body)["error"]
        assert http("GET", base + "/stats?token=wrong")[0] == 403
        assert http("GET", base + "/stats", headers={"Authorization": "Bearer s3cre"})[0] == 403  # a prefix is not the token
        status, body, _ = http("GET", base + "/stats", headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and "frames" in json.loads(body)
        assert http("GET", base + "/stats?token=s3cret")[0] == 200
        assert http("GET", base + "/health")[0] == 200  # probes need no token
        assert "?token=s3cret" in out.url
    finally:
        out.close()


def test_non_loopback_bind_generates_and_prints_a_token_once(capsys: pytest.CaptureFixture[str]) -> None:
    out = WebRTCOutput("0.0.0.0:0", config())
    out.open(512, 512, 30)
    try:
        printed = capsys.readouterr().out
        assert out.token and len(out.token) >= 20
        assert printed.count(out.token) == 1
        base = f"http://127.0.0.1:{out.port}"
        status, answer = post_json(base + "/offer", {"type": "offer", "sdp": make_offer()})
        assert status == 403 and "token" in answer["error"]
        status, answer = post_json(base + "/offer", {"type": "offer", "sdp": make_offer()}, token=out.token)
        assert status == 200
    finally:
        out.close()
    assert capsys.readouterr().out.count(out.token) == 0


def test_port_in_use_names_the_port_and_leaves_nothing_running() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        out = WebRTCOutput(f"127.0.0.1:{port}", config())
        with pytest.raises(OutputError) as err:
            out.open(512, 512, 30)
    msg = str(err.value)
    assert f"port {port}" in msg and "already in use" in msg and "\n" not in msg
    assert err.value.exit_code == 2
    assert not webrtc_threads()


def test_an_address_not_on_this_machine_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    out = WebRTCOutput("203.0.113.7:0", config())  # TEST-NET-3: never a local address
    with pytest.raises(OutputError, match="cannot listen on 203.0.113.7"):
        out.open(512, 512, 30)
    assert not webrtc_threads()
    assert "token" not in capsys.readouterr().out  # nothing printed for a server that never started


def test_close_stops_every_thread_and_is_idempotent() -> None:
    before = set(threading.enumerate())
    out = WebRTCOutput("127.0.0.1:0", config())
    out.open(512, 512, 30)
    assert "webrtc-server" in webrtc_threads()
    assert any(n.startswith("webrtc-encode") for n in webrtc_threads())
    post_json(out.url + "offer", {"type": "offer", "sdp": make_offer()})
    out.close()
    out.close()
    assert not webrtc_threads()
    assert set(threading.enumerate()) <= before
    # Writing after close is harmless (the fan-out may deliver one more frame).
    out.write(RenderedFrame(image=np.zeros((512, 512, 3), np.uint8), capture_ts=time.monotonic(), index=0))
