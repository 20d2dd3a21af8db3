"""The browser transport: what a studio page sends over its peer connection, into the session.

The studio offers one peer connection with its camera and microphone (sendrecv) and a
data channel; the answer carries the avatar's video and voice back. Incoming video frames
go to the session's `PushCapture` (like a webcam), incoming audio to its microphone
`JitterBuffer` at 48 kHz mono (like a microphone). Data channels receive caption cues.
Everything here runs on the session's media loop (the WebRTC output's event loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, cast

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from src.serve.jitter import JitterBuffer
from src.serve.push_sources import STREAM_RATE_HZ, PushCapture

log = logging.getLogger(__name__)


class BrowserTransport:
    """Takes a peer connection's incoming tracks and data channels (see the module doc)."""

    def __init__(self, capture: PushCapture | None, mic: JitterBuffer | None) -> None:
        self.capture = capture
        self.mic = mic
        self.channels: set[Any] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.video_frames = 0
        self.audio_frames = 0
        self.last_input = 0.0  # monotonic time of the newest incoming media

    def attach(self, pc: RTCPeerConnection) -> None:
        """Called on the media loop before the offer is applied."""

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and self.capture is not None:
                self._spawn(self._pump_video(track))
            elif track.kind == "audio" and self.mic is not None:
                self._spawn(self._pump_audio(track))

        @pc.on("datachannel")
        def _on_channel(channel: Any) -> None:
            self.channels.add(channel)

            @channel.on("close")
            def _closed() -> None:
                self.channels.discard(channel)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump_video(self, track: MediaStreamTrack) -> None:
        assert self.capture is not None
        try:
            while True:
                frame = await track.recv()
                self.last_input = time.monotonic()
                image = cast(av.VideoFrame, frame).to_ndarray(format="bgr24")  # a video track yields VideoFrames
                self.capture.push(image)
                self.video_frames += 1
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bad frame ends this track only
            log.warning("browser video track ended: %s", exc)

    async def _pump_audio(self, track: MediaStreamTrack) -> None:
        assert self.mic is not None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=STREAM_RATE_HZ)
        try:
            while True:
                frame = await track.recv()
                self.last_input = time.monotonic()
                for out in resampler.resample(cast(av.AudioFrame, frame)):  # an audio track yields AudioFrames
                    self.mic.push(np.asarray(out.to_ndarray(), np.float32).reshape(-1))
                self.audio_frames += 1
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("browser audio track ended: %s", exc)

    def send(self, message: dict[str, Any]) -> None:
        """Send a JSON message on every open data channel (call on the media loop)."""
        text = json.dumps(message)
        for ch in list(self.channels):
            if getattr(ch, "readyState", "") == "open":
                try:
                    ch.send(text)
                except Exception as exc:  # noqa: BLE001 - a closing channel
                    log.debug("data channel send failed: %s", exc)

    def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        self.channels.clear()
