"""A real WebRTC viewer for tests: aiortc in a thread with its own event loop, posting its offer to a
puppetcam preview server and decoding every video frame it receives.

    with ReadingViewer("http://127.0.0.1:8080/") as viewer:
        ...  # viewer.frames, viewer.sizes, viewer.g2g_ms (stamped frames), viewer.last_image
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from src.output.timestamp_code import read_stamp, wall_ms_now


class ReadingViewer:
    """A real WebRTC viewer (aiortc, in a thread with its own loop) that decodes and keeps what it saw."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-viewer", daemon=True)
        self.frames = 0
        self.sizes: set[tuple[int, int]] = set()
        self.g2g_ms: list[float] = []
        self.last_image: np.ndarray | None = None  # the newest decoded frame (BGR)
        self.pc: RTCPeerConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def _read(self, track: object) -> None:
        while True:
            frame = await track.recv()  # type: ignore[attr-defined]
            self.frames += 1
            self.sizes.add((frame.width, frame.height))
            self.last_image = frame.to_ndarray(format="bgr24")
            value = read_stamp(frame.to_ndarray(format="gray"))
            if value is not None:
                self.g2g_ms.append(wall_ms_now() - value)

    async def _connect(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def on_track(track: object) -> None:
            self._reader = asyncio.ensure_future(self._read(track))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = json.dumps({"type": "offer", "sdp": self.pc.localDescription.sdp}).encode()
        req = urllib.request.Request(self.url + "offer", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        answer = await self.loop.run_in_executor(None, lambda: json.loads(urllib.request.urlopen(req, timeout=10).read()))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def _close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.pc is not None:
            await self.pc.close()
        await self.loop.shutdown_default_executor()

    def __enter__(self) -> ReadingViewer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(15)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
