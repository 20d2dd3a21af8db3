"""WebRTC preview output: `--output webrtc[:HOST:PORT]` serves a live page to several viewers."""

from src.output.webrtc.output import WebRTCOutput
from src.output.webrtc.tracks import PcmSource

__all__ = ["PcmSource", "WebRTCOutput"]
