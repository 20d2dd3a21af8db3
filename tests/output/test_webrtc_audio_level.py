"""The WebRTC server replaces aiortc's per-sample Python loop for the RTP audio level with NumPy
(src/output/webrtc/audio_level.py): the same integer for every frame, and it is what aiortc calls."""

from __future__ import annotations

import av
import numpy as np


def _frame(x: np.ndarray) -> av.AudioFrame:
    f = av.AudioFrame.from_ndarray(x.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
    f.sample_rate = 48000
    return f


def test_the_server_module_installs_it_in_aiortc() -> None:
    from aiortc import rtp

    import src.output.webrtc.server  # noqa: F401 - importing it installs the replacement
    from src.output.webrtc import audio_level

    assert rtp.compute_audio_level_dbov is audio_level.audio_level_dbov
    assert audio_level.aiortc_original is not None and audio_level.aiortc_original is not audio_level.audio_level_dbov
    assert audio_level.install() is True  # idempotent: the original stays aiortc's
    assert audio_level.aiortc_original.__module__ == "aiortc.rtp"


def test_same_level_as_aiortc_for_every_kind_of_frame() -> None:
    import src.output.webrtc.server  # noqa: F401
    from src.output.webrtc import audio_level

    reference = audio_level.aiortc_original
    rng = np.random.default_rng(0)
    frames = [np.zeros(960), np.full(960, -32768), np.full(960, 32767), np.full(960, 1)]
    for amp in (0.5, 1, 3, 30, 300, 3000, 20000, 60000):
        frames += [np.clip(rng.normal(0, amp, 960), -32768, 32767) for _ in range(40)]
    frames += [np.clip(rng.normal(0, 500, n), -32768, 32767) for n in (1, 160, 480, 1920)]
    levels = [audio_level.audio_level_dbov(_frame(x)) for x in frames]
    assert levels == [reference(_frame(x)) for x in frames]
    assert len(set(levels)) > 20  # the frames span the range (the comparison means something)
