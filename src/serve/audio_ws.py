"""`GET /api/sessions/{id}/audio` upgraded to a WebSocket: a voice streamed as PCM.

Binary messages: PCM s16le mono at `?rate=16000|24000|48000`, resampled to the session's
48 kHz and pushed into its bounded jitter buffer (spoken as it arrives; an underrun closes
the mouth). Text messages: `{"type": "interrupt"}` (drop what is buffered and stop any
speech) and `{"type": "end"}` (play what is buffered even below the jitter target).
An unsupported rate, an odd byte count or an unknown message closes the socket with a
reason (close code 1003 or 1008); nothing else is affected.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from src.audio.io.resample import StreamingResampler
from src.serve.engine import SessionHandle
from src.serve.push_sources import STREAM_RATE_HZ

log = logging.getLogger(__name__)

RATES = (16000, 24000, 48000)
MAX_MESSAGE_BYTES = 1 << 20


def decode_pcm(data: bytes) -> np.ndarray:
    """s16le bytes -> float32 samples in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


async def audio_socket(request: web.Request, session: SessionHandle, ws: web.WebSocketResponse) -> web.WebSocketResponse:
    await ws.prepare(request)
    raw_rate = request.query.get("rate", "16000")
    if not raw_rate.isdigit() or int(raw_rate) not in RATES:
        await ws.close(code=WSCloseCode.POLICY_VIOLATION,
                       message=f"rate {raw_rate!r}: unsupported; use ?rate=16000, 24000 or 48000".encode())
        return ws
    rate = int(raw_rate)
    resampler = StreamingResampler(rate, STREAM_RATE_HZ)
    try:
        await _serve(ws, session, resampler, rate)
    except Exception as exc:  # noqa: BLE001 - the session ended under us: close this socket only
        log.info("audio socket of session %s: %s", session.id, exc)
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"session ended")
    return ws


async def _serve(ws: web.WebSocketResponse, session: SessionHandle, resampler: StreamingResampler, rate: int) -> None:
    received = 0
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            data: bytes = msg.data
            if len(data) % 2:
                await ws.close(code=WSCloseCode.UNSUPPORTED_DATA,
                               message=f"binary message of {len(data)} bytes: PCM s16le needs an even byte count".encode())
                break
            received += len(data) // 2
            session.push_pcm(resampler.process(decode_pcm(data)))
        elif msg.type == WSMsgType.TEXT:
            try:
                kind = json.loads(msg.data).get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "interrupt":
                session.interrupt()
                resampler.reset()
            elif kind == "end":
                session.push_pcm(resampler.process(np.zeros(64, np.float32)))
                session.end_pcm()
            else:
                await ws.close(code=WSCloseCode.UNSUPPORTED_DATA,
                               message=b'text messages are {"type": "interrupt"} or {"type": "end"}')
                break
        elif msg.type == WSMsgType.ERROR:
            log.info("audio socket of session %s: %s", session.id, ws.exception())
            break
    log.info("audio socket of session %s closed after %.1f s of audio", session.id, received / rate)
