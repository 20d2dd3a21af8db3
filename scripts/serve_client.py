"""A small client of the `serve` API for tests and benchmarks: plain HTTP calls, multipart uploads, an aiortc viewer."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make `src` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def http(method: str, url: str, body: bytes | dict[str, Any] | None = None, *, token: str | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60.0) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or raw text)."""
    h = dict(headers or {})
    data: bytes | None
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    else:
        data = body
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, dict(exc.headers), exc.read()
    try:
        return status, hdrs, json.loads(raw) if raw else None
    except ValueError:
        return status, hdrs, raw.decode("utf-8", "replace")


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, (filename, data) in (files or {}).items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def create(base: str, *, admin: str | None = None, files: dict[str, tuple[str, bytes]] | None = None,
           **fields: str) -> tuple[int, dict[str, str], Any]:
    body, headers = multipart({k: str(v) for k, v in fields.items()}, files)
    return http("POST", f"{base}/api/sessions", body, token=admin, headers=headers)


@dataclass
class Received:
    frames: int = 0
    first_frame_at: float | None = None
    images: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (arrival monotonic, BGR)
    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (arrival monotonic, mono float32 48 kHz)
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    status: int = 0
    error: str | None = None


async def view(base: str, session_id: str, token: str, seconds: float, *, keep_images: int = 0,
               on_connected: Any = None) -> Received:
    """An aiortc viewer: offers recvonly video + audio + a data channel; collects for `seconds`."""
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    got = Received()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    channel = pc.createDataChannel("captions")

    @channel.on("message")
    def _msg(text: str) -> None:
        got.messages.append((time.monotonic(), json.loads(text)))

    tasks: list[asyncio.Task[None]] = []

    async def pump(track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "video":
                    got.frames += 1
                    if got.first_frame_at is None:
                        got.first_frame_at = now
                    if len(got.images) < keep_images:
                        got.images.append((now, frame.to_ndarray(format="bgr24")))
                else:
                    pcm = frame.to_ndarray().astype(np.float32).reshape(-1, len(frame.layout.channels)).mean(axis=1)
                    got.audio.append((now, pcm / 32768.0))
        except MediaStreamError:
            pass

    @pc.on("track")
    def _track(track: Any) -> None:
        tasks.append(asyncio.ensure_future(pump(track)))

    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{base}/api/sessions/{session_id}/offer", headers={"Authorization": f"Bearer {token}"},
                               json={"type": "offer", "sdp": pc.localDescription.sdp, "role": "viewer"}) as resp:
            got.status = resp.status
            body = await resp.json()
    if got.status != 200:
        got.error = body.get("error")
        await pc.close()
        return got
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
    if on_connected is not None:
        t0 = time.monotonic()
        while got.frames == 0 and time.monotonic() - t0 < 20:
            await asyncio.sleep(0.02)
        await asyncio.get_running_loop().run_in_executor(None, on_connected)
    await asyncio.sleep(seconds)
    await pc.close()
    for t in tasks:
        t.cancel()
    return got


def audio_level(audio: list[tuple[float, np.ndarray]], t0: float, t1: float) -> float:
    parts = [x for t, x in audio if t0 <= t < t1]
    return float(np.sqrt(np.mean(np.concatenate(parts) ** 2))) if parts else 0.0


def first_loud(audio: list[tuple[float, np.ndarray]], after: float, threshold: float = 0.02) -> float | None:
    for t, x in audio:
        if t >= after and float(np.sqrt(np.mean(x**2))) > threshold:
            return t
    return None


def wait_for(pred: Any, timeout: float, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())
