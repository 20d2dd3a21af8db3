"""The HTTP application: one factory, one route table, thin handlers, one error middleware.

`create_app(config, engine, host=...)` builds it (tests start it on a free port). Handlers
parse and validate (pydantic models), call the engine or a session handle off the event
loop, and shape the answer. Every error is `{"error": "..."}` with its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ValidationError

from src.core.config import AppConfig, resolve_path
from src.core.errors import SourceImageError, UserError
from src.output.webrtc.auth import is_loopback
from src.serve import metrics as prom
from src.serve import models as m
from src.serve.admission import Admission
from src.serve.audio_ws import MAX_MESSAGE_BYTES, audio_socket
from src.serve.engine import Engine, SessionHandle
from src.serve.openapi import ApiRoute, openapi_document
from src.serve.session import DRIVERS, SessionError, SessionSpec
from src.serve.tokens import AuthError, SessionTokens, check_admin, check_session
from src.serve.uploads import UploadError, store_portrait

log = logging.getLogger(__name__)

STATIC = {"studio.js": "text/javascript", "view.js": "text/javascript", "common.js": "text/javascript",
          "style.css": "text/css", "chroma.js": "text/javascript"}
SHARED_STATIC = {"chroma.js": "src.output.webrtc"}  # files of another package's pages, served here too
REAP_INTERVAL_S = 1.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class ServerState:
    config: AppConfig
    engine: Engine
    admission: Admission
    admin_token: str | None
    tokens: dict[str, SessionTokens] = field(default_factory=dict)
    pending: int = 0
    created: int = 0
    ended: dict[str, int] = field(default_factory=dict)
    reaper: asyncio.Task[None] | None = None
    sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)  # open audio sockets per session


STATE = web.AppKey("state", ServerState)


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status, headers={"Cache-Control": "no-store"})


def _static(name: str) -> bytes:
    return resources.files(SHARED_STATIC.get(name, "src.serve")).joinpath("static", name).read_bytes()


async def _body(request: web.Request, model: type[BaseModel], limit: int = 65536) -> Any:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"request body is {request.content_length} bytes; the limit here is {limit}")
    raw = await request.read()
    if len(raw) > limit:
        raise ApiError(413, f"request body is over {limit} bytes")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, f"body is not valid JSON; send a {model.__name__} object") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(400, f"{where}: {err['msg']}") from None


# -- the middleware ---------------------------------------------------------------------------

@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status, headers=exc.headers)
    except (AuthError, UploadError, SessionError) as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except web.HTTPRequestEntityTooLarge as exc:
        return web.json_response({"error": f"request body too large ({exc.text}); a portrait may be at most "
                                           f"{request.app[STATE].config.serve.max_upload_bytes} bytes"}, status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": f"{exc.reason}: {request.method} {request.path}"}, status=exc.status)
    except UserError as exc:
        from src.audio.tts import TextTooLongError

        return web.json_response({"error": " ".join(str(exc).split())}, status=413 if isinstance(exc, TextTooLongError) else 400)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error; see the server log"}, status=500)


# -- helpers ----------------------------------------------------------------------------------

def _session(request: web.Request, need: str = "control") -> tuple[SessionHandle, str]:
    state = request.app[STATE]
    sid = request.match_info["id"]
    session = state.engine.get(sid)
    tokens = state.tokens.get(sid)
    if session is None or tokens is None:
        raise ApiError(404, f"session {sid!r}: no such session (it ended, or the id is wrong); create one with POST /api/sessions")
    role = check_session(request, tokens, "control" if need == "control" else "viewer")
    return session, role


def _urls(request: web.Request, sid: str, tokens: SessionTokens) -> tuple[str, str]:
    base = f"{request.scheme}://{request.host}"
    return f"{base}/view/{sid}?token={tokens.viewer}", f"{base}/?session={sid}&token={tokens.control}"


FORM_FILES = ("portrait", "background_image")
FORM_FIELDS = ("animator", "driver", "output_size_px", "background")


async def _read_create_form(request: web.Request, config: AppConfig) -> tuple[dict[str, str], dict[str, bytes]]:
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    ctype = request.content_type
    if ctype == "multipart/form-data":
        reader = await request.multipart()
        limit = config.serve.max_upload_bytes
        while True:
            part = await reader.next()
            if part is None:
                break
            name = getattr(part, "name", None) or ""
            if name in FORM_FILES:
                buf = bytearray()
                while chunk := await part.read_chunk(1 << 16):  # type: ignore[union-attr]  # a form field is a body part, not a nested multipart
                    buf.extend(chunk)
                    if len(buf) > limit:
                        raise UploadError(413, f"{name}: over the limit of {limit} bytes (serve.max_upload_bytes); "
                                               "upload a smaller image")
                files[name] = bytes(buf)
            elif name in FORM_FIELDS:
                fields[name] = (await part.text()).strip()  # type: ignore[union-attr]  # a form field is a body part, not a nested multipart
            else:
                raise ApiError(400, f"form field {name!r}: unknown; the fields are {', '.join(FORM_FILES + FORM_FIELDS)}")
    elif ctype == "application/json":
        data = await _body(request, m.CreateSessionForm)
        fields = {k: str(v) for k, v in data.model_dump(exclude_none=True, exclude={"portrait", "background_image"}).items()}
    elif ctype in ("application/octet-stream", "") and not request.can_read_body:
        pass
    elif request.can_read_body:
        raise ApiError(415, f"Content-Type {ctype!r}: send multipart/form-data (a 'portrait' file and fields) or JSON")
    return fields, files


def _background(fields: dict[str, str], image_path: str | None) -> str | None:
    """The session's background spec from the form: a stored upload, or a mode checked for form (400 otherwise)."""
    from src.core.background_spec import validate_spec
    from src.core.errors import ConfigError

    raw = fields.get("background") or None
    if image_path is not None:
        if raw is not None and raw.strip().lower() != "image":
            raise ApiError(400, f"background {raw!r} with a background_image file: send one of the two")
        return f"image:{image_path}"
    if raw is None:
        return None
    try:
        spec = validate_spec(raw)
    except ConfigError as exc:
        raise ApiError(400, str(exc).replace("animation.background ", "background ", 1)) from None
    if spec.lower().startswith("image:") or spec.lower() == "image":
        raise ApiError(400, "background image:PATH: not over HTTP; upload the picture as the background_image file")
    return spec


def _spec(fields: dict[str, str], portrait_path: str, background_path: str | None = None) -> SessionSpec:
    from src.animation import ANIMATORS

    driver = fields.get("driver") or "browser"
    if driver not in DRIVERS:
        raise ApiError(400, f"driver {driver!r}: unknown; use one of {', '.join(DRIVERS)}")
    animator = fields.get("animator") or None
    if animator is not None and animator not in ANIMATORS:
        raise ApiError(400, f"animator {animator!r}: unknown; use one of {', '.join(ANIMATORS.names())}")
    size: int | None = None
    if fields.get("output_size_px"):
        raw = fields["output_size_px"]
        if not raw.isdigit() or not 64 <= int(raw) <= 2048 or int(raw) % 2:
            raise ApiError(400, f"output_size_px {raw!r}: give an even number of pixels from 64 to 2048, e.g. 512")
        size = int(raw)
    return SessionSpec(portrait=portrait_path, driver=driver, animator=animator, output_size_px=size,
                       background=_background(fields, background_path))


# -- handlers ---------------------------------------------------------------------------------

async def studio_page(request: web.Request) -> web.Response:
    return web.Response(body=_static("studio.html"), content_type="text/html", headers={"Cache-Control": "no-store"})


async def viewer_page(request: web.Request) -> web.Response:
    return web.Response(body=_static("view.html"), content_type="text/html", headers={"Cache-Control": "no-store"})


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise ApiError(404, f"/static/{name}: no such file")
    return web.Response(body=_static(name), content_type=STATIC[name], headers={"Cache-Control": "no-store"})


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(API_ROUTES))


async def create_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    config = state.config
    check_admin(request, state.admin_token)
    fields, files = await _read_create_form(request, config)
    if "portrait" in files:
        path = str(await asyncio.to_thread(store_portrait, files["portrait"], config))
    else:
        path = str(resolve_path(config.source.image))
    background_path = None
    if "background_image" in files:
        background_path = str(await asyncio.to_thread(store_portrait, files["background_image"], config, "background_image"))
    spec = _spec(fields, path, background_path)
    refusal = state.admission.check(len(state.engine.list()) + state.pending)
    if refusal is not None:
        state.admission.count(refusal)
        log.info("session refused: %s", refusal.reason)
        raise ApiError(503, refusal.reason, {"Retry-After": str(refusal.retry_after_s)})
    state.pending += 1
    try:
        session = await asyncio.to_thread(state.engine.create, spec)
    except SourceImageError as exc:
        msg = " ".join(str(exc).split()).replace(f"source image {path}", "portrait")
        raise ApiError(422, msg) from None
    finally:
        state.pending -= 1
    tokens = SessionTokens()
    state.tokens[session.id] = tokens
    state.created += 1
    viewer_url, studio_url = _urls(request, session.id, tokens)
    return _json(m.SessionCreated(id=session.id, token=tokens.control, viewer_token=tokens.viewer,
                                  viewer_url=viewer_url, studio_url=studio_url), 201)


async def list_sessions(request: web.Request) -> web.Response:
    state = request.app[STATE]
    check_admin(request, state.admin_token)
    infos = await asyncio.to_thread(lambda: [s.info() for s in state.engine.list()])
    return _json(m.SessionList(sessions=[m.SessionInfo.model_validate(i) for i in infos]))


async def get_session(request: web.Request) -> web.Response:
    session, _ = _session(request, need="viewer")
    info = await asyncio.to_thread(session.info)
    return _json(m.SessionInfo.model_validate(info))


async def delete_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    session, _ = _session(request)
    await _end(state, session.id, "deleted")
    return web.Response(status=204)


async def say(request: web.Request) -> web.Response:
    from src.audio.tts import check_text

    session, _ = _session(request)
    body: m.SayRequest = await _body(request, m.SayRequest, limit=256 * 1024)
    check_text(body.text)  # empty -> 400, over 5,000 characters -> 413
    await asyncio.to_thread(_check_voice, request.app[STATE].config, body.voice)
    queued = await asyncio.to_thread(session.say, body.text, body.voice)
    return _json(m.SayAccepted(queued=queued), 202)


def without_mdns_candidates(sdp: str) -> str:
    """The offer without browser host candidates hidden behind mDNS names (`....local`): resolving them costs aiortc
    a one-second timeout per offer, and the browser's checks reach us anyway (peer-reflexive candidates)."""
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    keep = [ln for ln in lines if not (ln.startswith("a=candidate:") and ".local " in ln)]
    return ("\r\n" if "\r\n" in sdp else "\n").join(keep)


def _check_voice(config: AppConfig, voice: str) -> None:
    from src.audio.tts import get_engine

    engine = get_engine(config.audio.tts.engine, config)
    known = engine.voices()
    if config.audio.tts.engine == "espeak" and voice.split("+")[0].lower() not in {v.lower() for v in known}:
        examples = ", ".join(v for v in ("en-us", "en-gb", "de", "fr", "es", "it") if v in known)
        raise ApiError(400, f"voice {voice!r}: unknown; use a language code such as {examples} ({len(known)} voices)")


async def interrupt(request: web.Request) -> web.Response:
    session, _ = _session(request)
    await asyncio.to_thread(session.interrupt)
    return _json(m.Interrupted())


async def offer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    session, role = _session(request, need="viewer")
    body: m.OfferRequest = await _body(request, m.OfferRequest, limit=state.config.output.webrtc.max_offer_bytes)
    if body.role == "studio" and role != "control":
        raise ApiError(403, "a viewer token cannot send a camera; the studio needs the session's control token")
    if not body.sdp.startswith("v=0"):
        raise ApiError(400, "sdp: must be an SDP session description starting with v=0")
    if "m=video" not in body.sdp:
        raise ApiError(400, "sdp: the offer has no video section; add a video transceiver (recvonly for a viewer)")
    status, answer = await asyncio.to_thread(session.offer, without_mdns_candidates(body.sdp), body.role, request.remote or "?")
    if status != 200:
        raise ApiError(status, answer.get("error", "offer refused"))
    return _json(m.OfferAnswer.model_validate(answer))


async def controls(request: web.Request) -> web.Response:
    session, _ = _session(request)
    body: m.ControlsRequest = await _body(request, m.ControlsRequest)
    result = await asyncio.to_thread(lambda: session.set_controls(**body.model_dump(exclude_none=True)))
    return _json(m.Controls.model_validate(result))


async def expression(request: web.Request) -> web.Response:
    from src.core.expressions import check_expression

    session, _ = _session(request)
    body: m.ExpressionRequest = await _body(request, m.ExpressionRequest)
    name = check_expression(body.name, body.intensity)  # an unknown name -> 400 listing the known ones
    result = await asyncio.to_thread(session.set_expression, name, body.intensity, body.hold_s)
    return _json(m.ExpressionState.model_validate(result))


async def background(request: web.Request) -> web.Response:
    session, _ = _session(request)
    body: m.BackgroundRequest = await _body(request, m.BackgroundRequest)
    result = await asyncio.to_thread(session.set_background, body.background)
    return _json(m.BackgroundState.model_validate(result))


async def audio(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    session, _ = _session(request)
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=None)
    sockets = state.sockets.setdefault(session.id, set())
    sockets.add(ws)
    try:
        return await audio_socket(request, session, ws)
    finally:
        sockets.discard(ws)


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _json(m.Health(status="ok", sessions=len(state.engine.list()), engine=state.engine.name))


async def health_ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refusal = state.admission.check(len(state.engine.list()) + state.pending)
    ready = refusal is None
    return _json(m.Ready(ready=ready, reason=refusal.reason if refusal is not None else None), 200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    check_admin(request, state.admin_token)
    infos = await asyncio.to_thread(lambda: [s.info() for s in state.engine.list()])
    batches = getattr(state.engine, "batch_sizes", None)
    text = prom.render(infos, dict(state.admission.refused), state.created, dict(state.ended),
                       batches() if callable(batches) else None)
    return web.Response(body=text.encode(), headers={"Content-Type": prom.CONTENT_TYPE})


# -- session ends -----------------------------------------------------------------------------

async def _end(state: ServerState, sid: str, reason: str) -> None:
    state.tokens.pop(sid, None)
    for ws in list(state.sockets.pop(sid, set())):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=f"session ended ({reason})"[:120].encode())
    if await asyncio.to_thread(state.engine.delete, sid, reason):
        kind = reason.split(":")[0].split(" (")[0]
        state.ended[kind] = state.ended.get(kind, 0) + 1


async def _reap(app: web.Application) -> None:
    """End sessions that failed or idled past serve.idle_timeout_s; one session's trouble never stops this."""
    state = app[STATE]
    idle_limit = state.config.serve.idle_timeout_s
    while True:
        await asyncio.sleep(REAP_INTERVAL_S)
        for s in state.engine.list():
            try:
                failure = await asyncio.to_thread(s.failure)
                if failure is not None:
                    log.warning("session %s failed and ends: %s", s.id, failure)
                    await _end(state, s.id, f"failed: {failure}")
                elif await asyncio.to_thread(s.idle_s) > idle_limit:
                    log.info("session %s idle for %.0f s: ends", s.id, idle_limit)
                    await _end(state, s.id, "idle")
            except Exception:
                log.exception("checking session %s failed", s.id)


async def _on_startup(app: web.Application) -> None:
    app[STATE].reaper = asyncio.ensure_future(_reap(app))


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE]
    if state.reaper is not None:
        state.reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.reaper
    await asyncio.to_thread(state.engine.close)


# -- the route table and the factory ----------------------------------------------------------

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/", studio_page),
    ("GET", "/view/{id}", viewer_page),
    ("GET", "/static/{name}", static_file),
    ("GET", "/api/openapi.json", openapi_json),
    ("POST", "/api/sessions", create_session),
    ("GET", "/api/sessions", list_sessions),
    ("GET", "/api/sessions/{id}", get_session),
    ("DELETE", "/api/sessions/{id}", delete_session),
    ("POST", "/api/sessions/{id}/say", say),
    ("POST", "/api/sessions/{id}/interrupt", interrupt),
    ("POST", "/api/sessions/{id}/offer", offer),
    ("POST", "/api/sessions/{id}/controls", controls),
    ("POST", "/api/sessions/{id}/expression", expression),
    ("POST", "/api/sessions/{id}/background", background),
    ("GET", "/api/sessions/{id}/audio", audio),
    ("GET", "/health", health),
    ("GET", "/health/ready", health_ready),
    ("GET", "/metrics", metrics),
]

API_ROUTES: list[ApiRoute] = [
    ApiRoute("POST", "/api/sessions", "Create a session (answers once the avatar is prepared)", m.CreateSessionForm,
             m.SessionCreated, 201, "admin", multipart=True, errors=(400, 413, 415, 422, 503)),
    ApiRoute("GET", "/api/sessions", "List sessions", None, m.SessionList, auth="admin"),
    ApiRoute("GET", "/api/sessions/{id}", "A session's state and figures", None, m.SessionInfo, errors=(404,)),
    ApiRoute("DELETE", "/api/sessions/{id}", "End a session and free everything it holds", status=204, errors=(404,)),
    ApiRoute("POST", "/api/sessions/{id}/say", "Speak text (queued in order)", m.SayRequest, m.SayAccepted, 202,
             errors=(400, 404, 409, 413, 429)),
    ApiRoute("POST", "/api/sessions/{id}/interrupt", "Stop speech now (queue cleared, mouth closes)", None,
             m.Interrupted, errors=(404, 409)),
    ApiRoute("POST", "/api/sessions/{id}/offer", "WebRTC: SDP offer -> answer (viewer, or studio with camera and mic)",
             m.OfferRequest, m.OfferAnswer, errors=(400, 404, 409, 413, 503)),
    ApiRoute("POST", "/api/sessions/{id}/controls", "Re-take neutral, motion mode, mouth owner, gains", m.ControlsRequest,
             m.Controls, errors=(400, 404, 409)),
    ApiRoute("POST", "/api/sessions/{id}/expression", "Show an expression (smile, surprise, anger, sadness; none) at an "
             "intensity 0-1, held or for hold_s seconds; 409 for an animator without expressions", m.ExpressionRequest,
             m.ExpressionState, errors=(400, 404, 409)),
    ApiRoute("POST", "/api/sessions/{id}/background", "Show another background from the next frame on (keep, blur, "
             "color:#RRGGBB, transparent); 409 for an animator without a background layer", m.BackgroundRequest,
             m.BackgroundState, errors=(400, 404, 409)),
    ApiRoute("GET", "/api/sessions/{id}/audio", "WebSocket: PCM s16le mono at ?rate=16000|24000|48000; text "
             "messages {\"type\": \"interrupt\"} and {\"type\": \"end\"}", status=101, errors=(404,)),
    ApiRoute("GET", "/health", "Liveness", None, m.Health, auth="none"),
    ApiRoute("GET", "/health/ready", "Ready for one more session (503 with the reason when full)", None, m.Ready,
             auth="none", errors=(503,)),
]


def create_app(config: AppConfig, engine: Engine, *, host: str = "127.0.0.1", admin_token: str | None = None,
               admission: Admission | None = None) -> web.Application:
    """The application. `admin_token`: required to create sessions (None on loopback, see tokens.py)."""
    sc = config.serve
    if admin_token is None and not is_loopback(host):
        raise ValueError("an admin token is required when binding beyond loopback")
    app = web.Application(middlewares=[error_middleware], client_max_size=sc.max_upload_bytes + (1 << 20))
    app[STATE] = ServerState(config, engine, admission or Admission(sc.max_sessions, sc.session_cpu_cores,
                                                                    budget_fraction=sc.cpu_budget_fraction,
                                                                    retry_after_s=sc.retry_after_s), admin_token)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app
