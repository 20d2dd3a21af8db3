"""A live `file:` output carries the driving audio, placed at its capture time against the video's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from src.core.frames import RenderedFrame
from src.output import FileOutput

RATE = 16000
BLOCK = 160  # 10 ms


class PcmFeed:
    """A PcmSource driven by the test: the real FileOutput/LivePcmMux receive its blocks."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[float, np.ndarray], None]] = []

    def add_pcm_listener(self, cb: Callable[[float, np.ndarray], None]) -> None:
        self.listeners.append(cb)

    def remove_pcm_listener(self, cb: Callable[[float, np.ndarray], None]) -> None:
        self.listeners.remove(cb)

    def push(self, ts: float, samples: np.ndarray) -> None:
        for cb in self.listeners:
            cb(ts, samples)


def _decode_audio(path: Path) -> tuple[np.ndarray, float, float]:
    """(mono samples, audio duration s, video duration s)."""
    with av.open(str(path)) as c:
        a, v = c.streams.audio[0], c.streams.video[0]
        v_frames = [f.time for f in c.decode(v)]
    with av.open(str(path)) as c:
        x = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])])
    period = v_frames[1] - v_frames[0]
    return x.astype(np.float32), len(x) / a.rate, v_frames[-1] - v_frames[0] + period


def _onsets(x: np.ndarray, thresh: float = 0.1) -> list[float]:
    env = np.abs(x) > thresh
    edges = np.flatnonzero(env[1:] & ~env[:-1]) + 1
    out: list[float] = []
    prev = -1.0
    for e in edges / RATE:  # a burst's zero crossings are < 2 ms apart; bursts are >= 0.5 s apart
        if e - prev > 0.05:
            out.append(float(e))
        prev = e
    return out


def _write(path: Path, feed: PcmFeed, bursts_at: list[float], gap: tuple[float, float] | None = None,
           audio_from: float = -0.5, seconds: float = 3.0, t0: float = 1000.0) -> FileOutput:  # fmt: skip
    """Video frames at 30 fps from capture time t0; audio blocks from t0+audio_from with 0.2 s
    tone bursts starting at t0 + each of `bursts_at`; no blocks inside `gap` (a stalled mic)."""
    out = FileOutput(str(path))
    out.attach_audio(feed)
    out.open(64, 64, 30.0)
    img = np.zeros((64, 64, 3), np.uint8)
    n_blocks = int((seconds - audio_from) * RATE / BLOCK)
    blocks = []
    for k in range(n_blocks):
        start = audio_from + k * BLOCK / RATE
        if gap and gap[0] <= start < gap[1]:
            continue
        t = start + np.arange(BLOCK) / RATE
        on = np.zeros(BLOCK, bool)
        for b in bursts_at:
            on |= (t >= b) & (t < b + 0.2)
        blocks.append((t0 + start, (0.5 * np.sin(2 * np.pi * 440 * t) * on).astype(np.float32)))
    i = 0
    for n in range(int(seconds * 30)):
        ts = t0 + n / 30
        while i < len(blocks) and blocks[i][0] < ts + 0.02:  # audio arrives a little ahead of the frame it drives
            feed.push(*blocks[i])
            i += 1
        out.write(RenderedFrame(img, ts, n))
    out.close()
    return out


def test_live_file_carries_the_audio_at_its_capture_time(tmp_path: Path) -> None:
    path = tmp_path / "live.mp4"
    out = _write(path, PcmFeed(), bursts_at=[0.5, 1.3, 2.2])
    x, a_dur, v_dur = _decode_audio(path)
    assert abs(a_dur - v_dur) < 0.07  # AAC frames are 64 ms
    onsets = _onsets(x)
    assert len(onsets) == 3
    # AAC's encoder delay is taken out by the decoder's skip; allow a few ms of codec smear.
    np.testing.assert_allclose(onsets, [0.5, 1.3, 2.2], atol=0.01)
    assert out.audio is not None and out.audio.trimmed_samples >= 0.5 * RATE  # audio before the first frame is cut


def test_a_stalled_microphone_becomes_silence_and_sync_holds_after(tmp_path: Path) -> None:
    path = tmp_path / "gap.mp4"
    out = _write(path, PcmFeed(), bursts_at=[0.4, 2.4], gap=(1.0, 1.8))
    x, a_dur, v_dur = _decode_audio(path)
    assert abs(a_dur - v_dur) < 0.07
    np.testing.assert_allclose(_onsets(x), [0.4, 2.4], atol=0.01)
    assert out.audio is not None and abs(out.audio.silence_samples / RATE - 0.8) < 0.02
    assert np.abs(x[int(1.05 * RATE) : int(1.75 * RATE)]).max() < 0.01


def test_cli_live_run_with_an_audio_file_writes_it_into_the_mp4(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "talk.mp4"
    speech = Path(__file__).resolve().parents[2] / "assets" / "speech_en.wav"
    res = run_cli("run", "--audio", str(speech), "--output", f"file:{path}", "--duration", "3")
    assert res.returncode == 0, res.stderr
    x, a_dur, v_dur = _decode_audio(path)
    assert abs(a_dur - v_dur) < 0.1
    assert np.sqrt(np.mean(x**2)) > 0.01  # the speech is there, not silence
