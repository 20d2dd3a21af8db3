"""`serve`'s HTTP API: the contract, tokens, admission, idle timeout, and every bad input (a 4xx JSON error)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.serve import ServeServer, create, http, multipart, wait_for


def session_threads(sid: str) -> list[str]:
    return [t.name for t in threading.enumerate() if sid in t.name]


@pytest.fixture(scope="module")
def server(make_config: Any) -> Iterator[ServeServer]:
    cfg = make_config("serve.max_sessions=2", "serve.session_cpu_cores=0.01", "serve.max_upload_bytes=2000000")
    with ServeServer(cfg) as srv:
        yield srv


@pytest.fixture
def text_session(server: ServeServer) -> Iterator[dict[str, Any]]:
    status, _, body = create(server.base, driver="text")
    assert status == 201, body
    yield body
    http("DELETE", f"{server.base}/api/sessions/{body['id']}", token=body["token"])


def test_create_get_list_delete(server: ServeServer) -> None:
    status, _, body = create(server.base, driver="text")
    assert status == 201, body
    sid, token = body["id"], body["token"]
    assert body["viewer_url"].endswith(f"/view/{sid}?token={body['viewer_token']}")
    assert f"session={sid}" in body["studio_url"] and token in body["studio_url"]
    url = f"{server.base}/api/sessions/{sid}"
    assert wait_for(lambda: http("GET", url, token=token)[2]["frames"] > 5, 20)
    status, _, info = http("GET", url, token=token)
    assert status == 200 and info["state"] == "running" and info["driver"] == "text" and info["animator"] == "meshwarp"
    assert info["fps"] > 0 and info["latency_ms"]["p50"] is not None and info["cpu_ms_per_frame"] > 0
    assert session_threads(sid), "the session's own threads are named after it"
    # the viewer token reads the state but controls nothing
    assert http("GET", url, token=body["viewer_token"])[0] == 200
    assert http("DELETE", url, token=body["viewer_token"])[0] == 403
    status, _, listing = http("GET", f"{server.base}/api/sessions")
    assert status == 200 and sid in [s["id"] for s in listing["sessions"]]
    assert http("DELETE", url, token=token)[0] == 204
    assert http("GET", url, token=token)[0] == 404
    assert wait_for(lambda: not session_threads(sid), 5), session_threads(sid)


def test_tokens_missing_and_wrong(server: ServeServer, text_session: dict[str, Any]) -> None:
    url = f"{server.base}/api/sessions/{text_session['id']}"
    status, _, body = http("GET", url)
    assert status == 401 and "token" in body["error"]
    status, _, body = http("GET", url, token="nope")
    assert status == 403 and "token" in body["error"]
    assert http("GET", f"{url}?token={text_session['token']}")[0] == 200
    assert http("POST", f"{url}/say", {"text": "hi"}, token=text_session["viewer_token"])[0] == 403


def test_openapi_document(server: ServeServer) -> None:
    status, _, doc = http("GET", f"{server.base}/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for path in ("/api/sessions", "/api/sessions/{id}", "/api/sessions/{id}/say", "/api/sessions/{id}/interrupt",
                 "/api/sessions/{id}/offer", "/api/sessions/{id}/audio", "/api/sessions/{id}/expression",
                 "/api/sessions/{id}/background"):
        assert path in doc["paths"], path
    schemas = doc["components"]["schemas"]
    assert {"SessionInfo", "SayRequest", "SessionCreated", "ErrorBody"} <= set(schemas)
    assert "latency_ms" in schemas["SessionInfo"]["properties"]
    assert "201" in doc["paths"]["/api/sessions"]["post"]["responses"]


def test_health_ready_and_metrics(server: ServeServer, text_session: dict[str, Any]) -> None:
    status, _, body = http("GET", f"{server.base}/health")
    assert status == 200 and body["status"] == "ok" and body["sessions"] >= 1
    assert http("GET", f"{server.base}/health/ready")[0] == 200
    status, _, text = http("GET", f"{server.base}/metrics")
    assert status == 200
    assert 'puppetcam_serve_sessions{state="running"}' in text
    assert f'puppetcam_serve_session_fps{{session="{text_session["id"]}"}}' in text


def _png(w: int, h: int, mode: str = "1") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (w, h)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name,data,status,words", [
    ("not an image", b"hello, I am text" * 10, 400, "not an image"),
    ("empty", b"", 400, "empty"),
    ("too many bytes", b"\x89PNG" + bytes(2_100_000), 413, "limit"),
    ("decompression bomb", None, 413, "megapixels"),
    ("truncated", None, 400, "corrupt"),
])
def test_bad_portraits(server: ServeServer, portrait_path: Path, name: str, data: bytes | None, status: int,
                       words: str) -> None:
    if name == "decompression bomb":
        data = _png(10_000, 10_000)  # 100 megapixels in a few kB
        assert len(data) < 200_000
    if name == "truncated":
        data = portrait_path.read_bytes()[:5000]
    got, _, body = create(server.base, driver="none", files={"portrait": ("p.png", data)})  # type: ignore[dict-item]
    assert got == status, body
    assert words in body["error"] and "portrait" in body["error"]


def test_portrait_without_a_face_is_422_with_the_cli_advice(server: ServeServer, blank_image: Path) -> None:
    status, _, body = create(server.base, driver="none", files={"portrait": ("blank.png", blank_image.read_bytes())})
    assert status == 422
    assert body["error"] == "portrait: no face found; use a photo with a clear, frontal, well-lit face"


def test_uploaded_portrait_makes_a_session(server: ServeServer, portrait_path: Path) -> None:
    status, _, body = create(server.base, driver="none", output_size_px="128",
                             files={"portrait": ("me.png", portrait_path.read_bytes())})
    assert status == 201, body
    assert http("DELETE", f"{server.base}/api/sessions/{body['id']}", token=body["token"])[0] == 204


@pytest.mark.parametrize("fields,words", [
    ({"driver": "carrier-pigeon"}, "driver"),
    ({"animator": "nope"}, "animator"),
    ({"output_size_px": "513"}, "output_size_px"),
    ({"colour": "red"}, "colour"),
])
def test_bad_create_fields(server: ServeServer, fields: dict[str, str], words: str) -> None:
    status, _, body = create(server.base, **fields)
    assert status == 400 and words in body["error"]


def test_unknown_session_and_route(server: ServeServer) -> None:
    status, _, body = http("GET", f"{server.base}/api/sessions/doesnotexist", token="x")
    assert status == 404 and "no such session" in body["error"]
    status, _, body = http("GET", f"{server.base}/api/nothing-here")
    assert status == 404 and "error" in body


def test_bad_say_requests(server: ServeServer, text_session: dict[str, Any]) -> None:
    url = f"{server.base}/api/sessions/{text_session['id']}/say"
    tok = text_session["token"]
    status, _, body = http("POST", url, {"text": "a" * 5001}, token=tok)
    assert status == 413 and "5000" in body["error"]
    assert http("POST", url, {"text": "   "}, token=tok)[0] == 400
    status, _, body = http("POST", url, {"text": "hi", "voice": "klingon"}, token=tok)
    assert status == 400 and "voice" in body["error"]
    status, _, body = http("POST", url, b"{not json", token=tok, headers={"Content-Type": "application/json"})
    assert status == 400 and "JSON" in body["error"]
    status, _, body = http("POST", url, {"txt": "hi"}, token=tok)
    assert status == 400 and "text" in body["error"]


def test_expression_route(server: ServeServer, text_session: dict[str, Any]) -> None:
    base = f"{server.base}/api/sessions/{text_session['id']}"
    tok = text_session["token"]
    status, _, body = http("POST", f"{base}/expression", {"name": "smile", "intensity": 0.7}, token=tok)
    assert status == 200 and body["name"] == "smile" and body["intensity"] == 0.7, body
    assert wait_for(lambda: http("GET", base, token=tok)[2]["expression"]["shown"] >= 0.69, 5), "the smile eases in"
    status, _, body = http("POST", f"{base}/expression", {"name": "Surprise", "intensity": 1, "hold_s": 0.5}, token=tok)
    assert status == 200 and body["name"] == "surprise"
    assert wait_for(lambda: http("GET", base, token=tok)[2]["expression"]["name"] == "none", 5), "the hold ends by itself"
    status, _, body = http("POST", f"{base}/expression", {"name": "smirk"}, token=tok)
    assert status == 400 and "smirk" in body["error"] and "smile, surprise, anger, sadness" in body["error"]
    for bad, word in (({"name": "smile", "intensity": 1.5}, "intensity"), ({"name": "smile", "hold_s": 0}, "hold_s"),
                      ({"intensity": 0.5}, "name")):
        status, _, body = http("POST", f"{base}/expression", bad, token=tok)
        assert status == 400 and word in body["error"], body
    assert http("POST", f"{base}/expression", {"name": "smile"}, token=text_session["viewer_token"])[0] == 403
    status, _, body = http("POST", f"{base}/expression", {"name": "none"}, token=tok)
    assert status == 200 and body["name"] == "none"


def _corner_bgr(server: ServeServer, s: dict[str, Any]) -> np.ndarray:
    """The mean colour of the top-left corner (backdrop, far from the person) of a frame a viewer decodes now."""
    from tests.support.serve import view

    got = asyncio.run(view(server.base, s["id"], s["viewer_token"], 1.5, keep_images=5))
    assert got.status == 200 and got.images, got.error
    img = got.images[-1][1]
    return img[4 : img.shape[0] // 10, 4 : img.shape[1] // 10].reshape(-1, 3).mean(axis=0)


def test_background_per_session_and_live(server: ServeServer) -> None:
    """A session's own background at creation (a mode or an uploaded picture), switched live; bad ones are 400."""
    import cv2

    status, _, s = create(server.base, driver="none", background="color:#FF2000")
    assert status == 201, s
    base, tok = f"{server.base}/api/sessions/{s['id']}", s["token"]
    try:
        info = http("GET", base, token=tok)[2]
        assert info["background"] == "color:#FF2000" and not info["transparent"]
        assert np.allclose(_corner_bgr(server, s), (0, 32, 255), atol=24), "the colour is behind the person"
        status, _, body = http("POST", f"{base}/background", {"background": "transparent"}, token=tok)
        assert status == 200 and body == {"background": "transparent", "transparent": True}, body
        info = http("GET", base, token=tok)[2]
        assert info["transparent"] and info["background"] == "transparent"
        assert np.allclose(_corner_bgr(server, s), (0x40, 0xB1, 0x00), atol=24), "the key colour goes out"
        for bad, words in (("purple", "unknown mode"), ("color:#12", "not a colour"), ("image:/etc/hosts", "background_image")):
            status, _, body = http("POST", f"{base}/background", {"background": bad}, token=tok)
            assert status == 400 and words in body["error"], body
        assert http("POST", f"{base}/background", {"background": "blur"}, token=s["viewer_token"])[0] == 403
        assert http("GET", base, token=tok)[2]["background"] == "transparent", "a refused switch changes nothing"
    finally:
        http("DELETE", base, token=tok)
    picture = np.zeros((120, 160, 3), np.uint8)
    picture[:] = (200, 40, 10)  # BGR: a blue picture
    png = cv2.imencode(".png", picture)[1].tobytes()
    status, _, s = create(server.base, driver="none", files={"background_image": ("office.png", png)})
    assert status == 201, s
    try:
        info = http("GET", f"{server.base}/api/sessions/{s['id']}", token=s["token"])[2]
        assert info["background"].startswith("image:")
        assert np.allclose(_corner_bgr(server, s), (200, 40, 10), atol=24), "the uploaded picture is behind the person"
    finally:
        http("DELETE", f"{server.base}/api/sessions/{s['id']}", token=s["token"])
    for fields, files, words in (({"background": "image:/etc/hosts"}, None, "background_image"),
                                 ({"background": "color:nope"}, None, "not a colour"),
                                 ({"background": "sepia"}, None, "unknown mode"),
                                 ({}, {"background_image": ("x.png", b"not a picture")}, "background_image: not an image"),
                                 ({"background": "blur"}, {"background_image": ("office.png", png)}, "one of the two")):
        status, _, body = create(server.base, driver="none", files=files, **fields)
        assert status == 400 and words in body["error"], (fields, body)


def test_bad_offers(server: ServeServer, text_session: dict[str, Any]) -> None:
    from tests.output.test_webrtc_server import make_offer

    url = f"{server.base}/api/sessions/{text_session['id']}/offer"
    tok = text_session["token"]
    status, _, body = http("POST", url, {"type": "offer", "sdp": "hello"}, token=tok)
    assert status == 400 and "v=0" in body["error"]
    status, _, body = http("POST", url, {"type": "offer", "sdp": "v=0\r\nm=video 9 nonsense\r\n"}, token=tok)
    assert status == 400 and "malformed" in body["error"]
    no_video = "\r\n".join(line for line in make_offer().split("\r\n") if "video" not in line)
    status, _, body = http("POST", url, {"type": "offer", "sdp": no_video}, token=tok)
    assert status == 400 and "video" in body["error"]
    status, _, body = http("POST", url, {"type": "answer", "sdp": make_offer()}, token=tok)
    assert status == 400 and "type" in body["error"]
    status, _, body = http("POST", url, {"type": "offer", "sdp": make_offer(), "role": "studio"},
                           token=text_session["viewer_token"])
    assert status == 403


def _ws_close(base: str, sid: str, token: str, query: str, send: bytes | str) -> tuple[int | None, str]:
    import aiohttp

    async def go() -> tuple[int | None, str]:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(f"{base}/api/sessions/{sid}/audio?token={token}{query}") as ws:
                if isinstance(send, bytes):
                    await ws.send_bytes(send)
                else:
                    await ws.send_str(send)
                msg = await ws.receive(timeout=10)
                return ws.close_code, str(msg.extra or "")

    return asyncio.run(go())


def test_bad_websocket_audio_is_closed_with_a_reason(server: ServeServer, text_session: dict[str, Any]) -> None:
    sid, tok = text_session["id"], text_session["token"]
    code, reason = _ws_close(server.base, sid, tok, "&rate=22050", b"\x00\x00")
    assert code == 1008 and "22050" in reason and "16000" in reason
    code, reason = _ws_close(server.base, sid, tok, "&rate=16000", b"\x00\x00\x00")
    assert code == 1003 and "even" in reason
    code, reason = _ws_close(server.base, sid, tok, "&rate=16000", '{"type": "dance"}')
    assert code == 1003 and "interrupt" in reason
    # the session did not notice
    status, _, info = http("GET", f"{server.base}/api/sessions/{sid}", token=tok)
    assert status == 200 and info["state"] == "running"


def test_max_sessions_is_503_with_retry_after(server: ServeServer) -> None:
    made = []
    try:
        for _ in range(2):
            status, _, body = create(server.base, driver="none")
            assert status == 201, body
            made.append(body)
        status, headers, body = create(server.base, driver="none")
        assert status == 503 and "--max-sessions" in body["error"] and int(headers["Retry-After"]) > 0
        assert http("GET", f"{server.base}/health/ready")[0] == 503
        assert 'puppetcam_serve_sessions_refused_total{reason="max_sessions"}' in http("GET", f"{server.base}/metrics")[2]
    finally:
        for b in made:
            http("DELETE", f"{server.base}/api/sessions/{b['id']}", token=b["token"])


def test_cpu_budget_admission() -> None:
    from src.serve.admission import Admission

    adm = Admission(max_sessions=100, session_cpu_cores=0.5, cores=2, budget_fraction=0.85)
    assert adm.check(2) is None  # 3 x 0.5 = 1.5 <= 1.7
    refusal = adm.check(3)  # 4 x 0.5 = 2.0 > 1.7
    assert refusal is not None and refusal.kind == "cpu" and "85%" in refusal.reason and adm.cpu_capacity == 3


def test_admin_token_off_loopback(make_config: Any) -> None:
    cfg = make_config()
    with ServeServer(cfg, admin_token="s3cret") as srv:
        status, _, body = create(srv.base, driver="none")
        assert status == 401 and "admin token" in body["error"]
        assert create(srv.base, driver="none", admin="wrong")[0] == 403
        assert http("GET", f"{srv.base}/api/sessions")[0] == 401
        status, _, body = create(srv.base, driver="none", admin="s3cret")
        assert status == 201
        assert http("DELETE", f"{srv.base}/api/sessions/{body['id']}", token=body["token"])[0] == 204
    from src.serve.tokens import resolve_admin_token

    assert resolve_admin_token("127.0.0.1", None) == (None, False)
    token, generated = resolve_admin_token("0.0.0.0", None)
    assert token and generated


def test_idle_session_ends_by_itself(make_config: Any) -> None:
    cfg = make_config("serve.idle_timeout_s=1.0")
    with ServeServer(cfg) as srv:
        status, _, body = create(srv.base, driver="text")
        assert status == 201
        url = f"{srv.base}/api/sessions/{body['id']}"
        assert wait_for(lambda: http("GET", url, token=body["token"])[0] == 404, 15)
        assert wait_for(lambda: 'puppetcam_serve_sessions_ended_total{reason="idle"} 1' in http("GET", f"{srv.base}/metrics")[2], 10)


def test_json_create_and_form_body_limits(server: ServeServer) -> None:
    status, _, body = http("POST", f"{server.base}/api/sessions", {"driver": "none", "output_size_px": 128})
    assert status == 201, body
    http("DELETE", f"{server.base}/api/sessions/{body['id']}", token=body["token"])
    status, _, body = http("POST", f"{server.base}/api/sessions", b"x=1",
                           headers={"Content-Type": "text/plain"})
    assert status == 415
    data, headers = multipart({}, {"portrait": ("big.png", bytes(np.ones(3_000_000, np.uint8)))})
    status, _, body = http("POST", f"{server.base}/api/sessions", data, headers=headers)
    assert status == 413 and "error" in body


def test_mdns_host_candidates_are_dropped_from_offers() -> None:
    from src.serve.app import without_mdns_candidates

    sdp = ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
           "a=candidate:1 1 udp 2113937151 ade989e3-ec29-41af-82ae-f77b2c046de8.local 40790 typ host generation 0\r\n"
           "a=candidate:2 1 udp 2113937151 127.0.0.1 40791 typ host generation 0\r\na=end-of-candidates\r\n")
    out = without_mdns_candidates(sdp)
    assert ".local" not in out and "127.0.0.1 40791" in out and out.startswith("v=0\r\nm=video") and out.endswith("\r\n")
