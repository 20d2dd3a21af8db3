"""The preview server: a page, WebRTC offers, health, stats and metrics (aiohttp + aiortc).

Everything here runs on the server's own asyncio loop (see `WebRTCOutput`).
Routes: `/` the page (`?bare=1` without overlay, for OBS Browser Source),
`POST /offer` (non-trickle SDP offer -> answer), `/stats` (JSON for the
overlay), `/health`, `/health/ready` (503 until the pipeline is ready),
`/metrics` (Prometheus).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from src.core.config import WebRTCOutputConfig
from src.core.errors import OutputError
from src.output.webrtc import audio_level, prometheus
from src.output.webrtc.auth import authorized
from src.output.webrtc.shared_encoder import SharedPacketTrack, SharedVp8Encoder
from src.output.webrtc.tracks import AudioFanIn, FrameHub, HubVideoTrack, PcmAudioTrack

log = logging.getLogger(__name__)
audio_level.install()  # aiortc's per-frame audio level, the same value without a Python loop per sample

STATIC_FILES = {"app.js": "text/javascript", "stamp.js": "text/javascript", "style.css": "text/css",
                "chroma.js": "text/javascript"}
WATCHDOG_INTERVAL_S = 1.0
PEER_CLOSE_TIMEOUT_S = 3.0


@dataclass
class Peer:
    """One viewer's connection."""

    id: int
    pc: RTCPeerConnection
    video: HubVideoTrack | SharedPacketTrack
    audio: PcmAudioTrack | None
    remote: str
    created: float = field(default_factory=time.monotonic)
    last_rtcp: float | None = None  # monotonic time the viewer's last receiver report was seen
    closing: bool = False
    watchdog: asyncio.Task[None] | None = None


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_malloc_trim = _load_malloc_trim()


def release_memory() -> None:
    """Give freed memory back to the OS (glibc keeps a departed viewer's codec buffers otherwise,
    so RSS would ratchet up as viewers come and go)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _static(name: str) -> bytes:
    return resources.files("src.output.webrtc").joinpath("static", name).read_bytes()


def answer_video_codec(sdp: str) -> str | None:
    """The codec an SDP answer chose for video (the first payload type of its m=video line)."""
    lines = sdp.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("m=video"):
            parts = line.split()
            if len(parts) < 4:
                return None
            for attr in lines[i + 1 :]:
                if attr.startswith("m="):
                    break
                if attr.startswith(f"a=rtpmap:{parts[3]} "):
                    return attr.split(" ", 1)[1].split("/")[0].upper()
    return None


def _bad(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _shared_encoding(cfg: WebRTCOutputConfig) -> bool:
    return cfg.shared_encoder and cfg.video_codec == "vp8"


class WebRTCServer:
    """Serves the page and the viewers; every method runs on the server's loop.

    `stats`, `stages` and `ready` are the output's callbacks for /stats, /metrics and /health/ready.
    """

    def __init__(
        self,
        cfg: WebRTCOutputConfig,
        host: str,
        port: int,
        token: str | None,
        hub: FrameHub,
        stats: Callable[[], dict[str, Any]],
        stages: Callable[[], dict[str, dict[str, Any]]],
        ready: Callable[[], bool],
    ) -> None:
        self.cfg = cfg
        self.host = host
        self.port = port
        self.token = token
        self.hub = hub
        self.audio: AudioFanIn | None = None
        self.encoder: SharedVp8Encoder | None = None
        self._stats = stats
        self._stages = stages
        self._ready = ready
        self.peers: dict[int, Peer] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.viewers_total = 0
        self.skipped_by_gone = 0  # frames skipped by viewers who have left
        self.refused: dict[int, int] = {}  # HTTP status -> count

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, listen: bool = True) -> int:
        """Bind and serve; returns the bound port. Raises OutputError if the port is taken.

        `listen=False` serves no HTTP: offers then come through `accept_offer` (the `serve` sessions)."""
        if not listen:
            self.start_encoder()
            return self.port
        app = web.Application(client_max_size=self.cfg.max_offer_bytes)
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/favicon.ico", self._no_content)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/stats", self._stats_json)
        app.router.add_get("/health", self._health)
        app.router.add_get("/health/ready", self._health_ready)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, shutdown_timeout=1.0)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            if exc.errno == errno.EADDRINUSE:
                raise OutputError(
                    f"--output webrtc: port {self.port} on {self.host} is already in use; stop the program using it "
                    f"or pick another port, e.g. --output webrtc:{self.host}:{self.port + 1}"
                ) from None
            raise OutputError(
                f"--output webrtc: cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                "use an address of this machine, e.g. --output webrtc:127.0.0.1:8080"
            ) from None
        self.start_encoder()
        sockets = site._server.sockets if isinstance(site._server, asyncio.Server) else []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self.port

    def start_encoder(self) -> None:
        if _shared_encoding(self.cfg) and self.encoder is None:
            self.encoder = SharedVp8Encoder(self.hub, self.cfg.video_bitrate_kbps * 1000, self.cfg.keyframe_interval_s)
            self.encoder.start()

    async def shutdown(self) -> None:
        """Close every viewer and stop serving."""
        self.hub.close()
        if self.encoder is not None:
            self.encoder.close()
        await asyncio.gather(*(self._drop(p, "server shutdown") for p in list(self.peers.values())))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- viewers ---------------------------------------------------------------------------------

    @property
    def viewer_count(self) -> int:
        return len(self.peers)

    def skipped_total(self) -> int:
        return self.skipped_by_gone + sum(p.video.skipped for p in list(self.peers.values()))

    async def _drop(self, peer: Peer, reason: str) -> None:
        if peer.closing:
            return
        peer.closing = True
        self.peers.pop(peer.id, None)
        self.skipped_by_gone += peer.video.skipped
        if peer.watchdog is not None and peer.watchdog is not asyncio.current_task():
            peer.watchdog.cancel()
        try:
            await asyncio.wait_for(peer.pc.close(), PEER_CLOSE_TIMEOUT_S)
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - a peer that dies badly must not stop the others
            log.info("viewer %d: close did not finish cleanly (%s)", peer.id, type(exc).__name__)
        peer.video.stop()
        if peer.audio is not None:
            peer.audio.stop()
        log.info("viewer %d (%s) left: %s; %d frames sent, %d skipped", peer.id, peer.remote, reason,
                 peer.video.frames, peer.video.skipped)
        release_memory()

    async def _last_rtcp(self, peer: Peer) -> float | None:
        """When this viewer last sent a receiver report (from the video sender's stats)."""
        for sender in peer.pc.getSenders():
            if sender.track is None or sender.kind != "video":
                continue
            report = await sender.getStats()
            for stat in report.values():
                if stat.type == "remote-inbound-rtp":
                    # The stat's wall-clock timestamp is renewed on every report; convert to monotonic.
                    age = time.time() - stat.timestamp.timestamp()
                    return time.monotonic() - age
        return None

    async def _watch(self, peer: Peer) -> None:
        """Close a viewer that went silent: no receiver report (or never connected) for peer_timeout_s.

        A tab that is killed sends no goodbye; ICE consent would only notice after ~30 s.
        """
        timeout = self.cfg.peer_timeout_s
        try:
            while not peer.closing:
                await asyncio.sleep(WATCHDOG_INTERVAL_S)
                now = time.monotonic()
                last = await self._last_rtcp(peer)
                if last is not None:
                    peer.last_rtcp = last
                alive_since = peer.last_rtcp if peer.last_rtcp is not None else peer.created
                if now - alive_since > timeout:
                    what = "no receiver reports" if peer.last_rtcp is not None else "never connected"
                    await self._drop(peer, f"{what} for {timeout:.0f} s")
                    return
        except asyncio.CancelledError:
            pass

    # --- HTTP handlers ---------------------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.refused[status] = self.refused.get(status, 0) + 1
        return _bad(status, reason)

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(body=_static("index.html"), content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    async def _no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return web.Response(body=_static(name), content_type=STATIC_FILES[name], headers={"Cache-Control": "no-store"})

    async def _read_offer(self, request: web.Request) -> dict[str, Any] | web.Response:
        limit = self.cfg.max_offer_bytes
        if request.content_type != "application/json":
            # Also makes a cross-site form post impossible: JSON needs a CORS preflight, which we never grant.
            return self._refuse(415, f"Content-Type must be application/json, got {request.content_type!r}")
        if request.content_length is not None and request.content_length > limit:
            return self._refuse(413, f"offer is {request.content_length} bytes; the limit is {limit} (output.webrtc.max_offer_bytes)")
        try:
            body = await request.read()  # bounded by the app's client_max_size (= the limit)
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, f"offer is larger than {limit} bytes (output.webrtc.max_offer_bytes)")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._refuse(400, 'body is not valid JSON; send {"type": "offer", "sdp": "..."}')
        if not isinstance(data, dict):
            return self._refuse(400, 'body must be a JSON object {"type": "offer", "sdp": "..."}')
        if data.get("type") != "offer":
            return self._refuse(400, f"'type' must be \"offer\", got {data.get('type')!r}")
        sdp = data.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0"):
            return self._refuse(400, "'sdp' must be an SDP session description starting with v=0")
        if "m=video" not in sdp:
            return self._refuse(400, "the offer has no video section; add a recvonly video transceiver")
        return data

    async def _offer(self, request: web.Request) -> web.Response:
        if not authorized(request, self.token):
            return self._refuse(403, "missing or wrong token; open the page with ?token=... as printed at start")
        if self.hub.closed:
            return self._refuse(503, "server is shutting down")
        parsed = await self._read_offer(request)
        if isinstance(parsed, web.Response):
            return parsed
        status, body = await self.accept_offer(parsed["sdp"], request.remote or "?")
        return web.json_response(body, status=status)

    async def accept_offer(self, sdp: str, remote: str,
                           on_peer: Callable[[RTCPeerConnection], None] | None = None) -> tuple[int, dict[str, Any]]:
        """Answer a validated SDP offer: (200, the answer) or (4xx/503, {"error": ...}).

        `on_peer(pc)` runs before the offer is applied (e.g. to take the browser's own tracks)."""
        if len(self.peers) >= self.cfg.max_viewers:
            self.refused[503] = self.refused.get(503, 0) + 1
            return 503, {"error": f"too many viewers ({self.cfg.max_viewers}; output.webrtc.max_viewers)"}
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: nothing leaves this network
        if on_peer is not None:
            on_peer(pc)
        encoder = self.encoder if "VP8/90000" in sdp else None
        shared = encoder is not None
        video: HubVideoTrack | SharedPacketTrack = SharedPacketTrack(encoder) if encoder is not None else HubVideoTrack(self.hub)
        audio = self.audio.track() if self.audio is not None else None
        peer = Peer(next(self._ids), pc, video, audio, remote)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self._add_tracks(peer)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            if shared and answer_video_codec(pc.localDescription.sdp) != "VP8":
                # The viewer chose another codec after all: it gets its own encoder.
                video.stop()
                video = peer.video = HubVideoTrack(self.hub)
                next(s for s in pc.getSenders() if s.kind == "video").replaceTrack(video)
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds on a malformed offer
            peer.closing = True
            with contextlib.suppress(Exception):
                await pc.close()
            video.stop()
            if audio is not None:
                audio.stop()
            self.refused[400] = self.refused.get(400, 0) + 1
            return 400, {"error": f"malformed SDP offer ({type(exc).__name__}: {str(exc)[:200]})"}
        self.peers[peer.id] = peer
        self.viewers_total += 1

        @pc.on("connectionstatechange")
        async def _state() -> None:
            state = pc.connectionState
            log.debug("viewer %d: connection %s", peer.id, state)
            if state in ("failed", "closed"):
                await self._drop(peer, f"connection {state}")

        peer.watchdog = asyncio.ensure_future(self._watch(peer))
        log.info("viewer %d (%s) joined; %d watching", peer.id, peer.remote, len(self.peers))
        local = pc.localDescription
        return 200, {"type": local.type, "sdp": local.sdp}

    def _add_tracks(self, peer: Peer) -> None:
        pc = peer.pc
        kinds = {t.kind for t in pc.getTransceivers()}
        if "video" not in kinds:
            raise ValueError("no video transceiver in the offer")
        sender = pc.addTrack(peer.video)
        if isinstance(peer.video, SharedPacketTrack) and hasattr(sender, "_send_keyframe"):
            # aiortc turns a viewer's PLI into a keyframe for its own encoder; with a shared
            # encoder the request has to reach that instead (aiortc 1.16 internals).
            sender._send_keyframe = peer.video.request_keyframe  # type: ignore[method-assign]  # deliberate patch of aiortc's private hook
        if peer.audio is not None and "audio" in kinds:
            pc.addTrack(peer.audio)
        preferred = "video/vp8" if self.cfg.video_codec == "vp8" else "video/h264"
        codecs = RTCRtpSender.getCapabilities("video").codecs
        ordered = sorted(codecs, key=lambda c: 0 if c.mimeType.lower() == preferred else 1)
        for t in pc.getTransceivers():
            if t.kind == "video":
                t.setCodecPreferences(ordered)

    async def _stats_json(self, request: web.Request) -> web.Response:
        if not authorized(request, self.token):
            return self._refuse(403, "missing or wrong token")
        return web.json_response(self._stats(), headers={"Cache-Control": "no-store"})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "viewers": len(self.peers)})

    async def _health_ready(self, request: web.Request) -> web.Response:
        ready = bool(self._ready())
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        if not authorized(request, self.token):
            return self._refuse(403, "missing or wrong token")
        text = prometheus.render(self._stats(), self._stages())
        return web.Response(body=text.encode(), headers={"Content-Type": prometheus.CONTENT_TYPE})
