"""The live audio driver the pipeline uses: a microphone or a file in, a mouth shape per instant out.

    driver = AudioDriver("mic", config)      # or "mic:USB", "mic:3", "speech.wav"
    driver.start()
    shape = driver.mouth_at(frame.capture_ts)
    driver.stop()

One named thread ("audio-analysis") reads 10 ms blocks (from the microphone's
bounded queue, or from a file paced on the monotonic clock), analyses them, keeps
a short history of smoothed mouth shapes stamped with capture time, and hands
each block to PCM listeners. A file is analysed LOOKAHEAD_HOPS ahead in one vectorised pass (the
same shapes); with no one to hand its blocks to on time it runs ahead altogether (AHEAD_LEAD_S).
A lost microphone closes the mouth, warns once and
is retried every `mic_retry_s`; nothing here raises into the pipeline after
`start()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from src.audio.io.blocks import AudioBlock, AudioInputError
from src.audio.io.file_player import Clock, FilePlayer, MonotonicClock
from src.audio.io.mic import InputStreams, MicCapture
from src.audio.io.playback import AudioPlayback
from src.audio.lipsync.analysis import FrameAnalyzer
from src.audio.lipsync.mouth import LiveMouth, MouthHistory
from src.audio.lipsync.vowels import VowelTemplates, load_templates
from src.audio.pcm import PcmListener
from src.core.config import AppConfig
from src.core.frames import MouthShape
from src.core.runtime.metrics import percentiles
from src.core.runtime.threads import name_os_thread

log = logging.getLogger(__name__)

BlockListener = Callable[[AudioBlock], None]
# A file is analysed this many hops ahead, in one vectorised pass (the same shapes as hop by hop); each
# shape still enters the history when its block is delivered, on time. A hop's NumPy calls cost more
# than its arithmetic: hop by hop, the analysis was most of an audio-driven session's audio thread.
LOOKAHEAD_HOPS = 10
# With nobody to hand blocks to on time (no PCM listener, no playback: a null or video-only output), the
# shapes enter the history ahead of time, stamped with their capture times (what `mouth_at` returns at
# any instant is unchanged, and never later than hop by hop), and the thread wakes once per
# LOOKAHEAD_HOPS instead of once per hop, this long before the batch's first hop.
AHEAD_LEAD_S = 0.05


def parse_audio_spec(spec: str) -> tuple[str, str | None]:
    """'mic' -> ('mic', None); 'mic:USB' -> ('mic', 'USB'); anything else -> ('file', spec)."""
    text = spec.strip()
    if not text or text.lower() == "none":
        raise AudioInputError("--audio: no audio input given; use mic, mic:DEVICE or a path to an audio file")
    head, sep, rest = text.partition(":")
    if head.lower() == "mic":
        return "mic", (rest.strip() or None) if sep else None
    return "file", text


class AudioDriver:
    """Audio in (microphone or file), smoothed mouth shapes out, stamped on time.monotonic()."""

    def __init__(
        self,
        spec: str,
        config: AppConfig,
        realtime: bool = True,
        loop: bool = False,
        *,
        play_audio: bool | None = None,
        clock: Clock | None = None,
        templates: VowelTemplates | None = None,
        input_streams: InputStreams | None = None,
    ) -> None:
        self.spec = spec
        self.config = config
        acfg = config.audio
        self.kind, arg = parse_audio_spec(spec)
        self.hop_s = acfg.block_ms / 1000.0
        self.clock = clock or MonotonicClock()
        self.mic: MicCapture | None = None
        self.player: FilePlayer | None = None
        if self.kind == "mic":
            self.mic = MicCapture(arg, acfg.sample_rate_hz, acfg.block_ms, acfg.mic_retry_s, acfg.ring_s, input_streams)
            self.label = self.mic.label
        else:
            assert arg is not None
            self.player = FilePlayer(arg, acfg.sample_rate_hz, acfg.block_ms, realtime, loop or acfg.loop, self.clock)
            self.label = self.player.reader.label
        self.templates = templates or load_templates(acfg)
        self._analyzer = FrameAnalyzer(acfg.sample_rate_hz, acfg.analysis_window_ms)
        self._mouth = LiveMouth(acfg, self.templates, self.hop_s)
        self._history = MouthHistory()
        self._ahead: deque[tuple[float, MouthShape, bool]] = deque()  # analysed, not delivered: (level, shape, active)
        self._active = False  # voice activity as of the last delivered hop
        self._play = (play_audio if play_audio is not None else acfg.play_audio) and self.kind == "file"
        self._playback: AudioPlayback | None = None
        self._pcm_listeners: list[PcmListener] = []
        self._block_listeners: list[BlockListener] = []
        self._untimed_listeners: list[BlockListener] = []  # called per block only while blocks are delivered on time
        self._listener_errors: dict[int, int] = {}
        self._stop = threading.Event()
        self.ended = threading.Event()  # set when no more audio will come (end of a file, or stop())
        self._thread: threading.Thread | None = None
        self._analysis_ms: deque[float] = deque(maxlen=1000)
        self._onsets: deque[tuple[float, float]] = deque(maxlen=200)  # (capture ts of the decision hop end, wall time)
        self.blocks = 0
        self._mouth_closed_for_loss = False
        self.last_level_db = -120.0

    # -- public API ----------------------------------------------------------------------------
    @property
    def duration_s(self) -> float | None:
        """Length of a file input in seconds (None for a microphone or an unknown length)."""
        return self.player.duration_s if self.player is not None else None

    @property
    def sample_rate_hz(self) -> int:
        """Rate of the blocks PCM listeners receive (mono float32)."""
        return self.config.audio.sample_rate_hz

    @property
    def voice_active(self) -> bool:
        return self._active and not (self.mic is not None and self.mic.lost)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add_pcm_listener(self, callback: PcmListener) -> None:
        """Call `callback(capture_ts, samples)` for every block (16 kHz mono float32), on the audio
        thread. It must return at once (hand the block to a queue: see PcmQueue)."""
        self._pcm_listeners.append(callback)

    def remove_pcm_listener(self, callback: PcmListener) -> None:
        """Stop calling `callback` (an output that closed); unknown callbacks are ignored."""
        self._pcm_listeners = [cb for cb in self._pcm_listeners if cb != callback]  # replaced, never mutated

    def add_block_listener(self, callback: BlockListener, in_time: bool = True) -> None:
        """Like add_pcm_listener with the whole AudioBlock (arrival times, media time).

        `in_time=False`: the listener can do without blocks while a file runs ahead (it reads
        `next_opening` instead), so it does not keep the thread waking once per hop."""
        (self._block_listeners if in_time else self._untimed_listeners).append(callback)

    def next_opening(self, after: float, until: float, threshold: float) -> float | None:
        """When, in (after, until], the mouth starts to open past `threshold`, if that is known already
        (a file analysed ahead); None otherwise."""
        return self._history.first_opening(after, until, threshold)

    def mouth_at(self, t_monotonic: float) -> MouthShape:
        """The smoothed mouth shape of the newest audio captured at or before `t_monotonic`."""
        return self._history.at(t_monotonic)

    def start(self) -> None:
        """Open the input and start the analysis thread. A microphone that cannot be opened raises
        AudioInputError (a user error) here."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.ended.clear()
        self._ahead.clear()
        if self.mic is not None:
            self.mic.start()
        if self._play:
            self._playback = AudioPlayback(self.config.audio.sample_rate_hz)
            if not self._playback.open():
                self._playback = None
        if self.player is not None:
            self.player.start()
        self._thread = threading.Thread(target=self._run, name="audio-analysis", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self.mic is not None:
            self.mic.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("audio-analysis thread did not stop within %.1f s", timeout)
        self._thread = None
        if self._playback is not None:
            self._playback.close()
            self._playback = None
        self.ended.set()

    def __enter__(self) -> AudioDriver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- audio thread --------------------------------------------------------------------------
    def _run(self) -> None:
        name_os_thread()
        try:
            while not self._stop.is_set():
                if self.mic is not None:
                    blocks = self.mic.read(timeout=0.05)
                    if self.mic.lost:
                        self._close_for_loss()
                        continue
                    self._mouth_closed_for_loss = False
                else:
                    assert self.player is not None
                    if not self._ahead:
                        self._analyse_ahead(self.player.peek(LOOKAHEAD_HOPS))
                    in_time = not self._can_run_ahead()
                    if in_time:
                        blocks = self.player.read(self._stop)
                    else:
                        blocks = self.player.take(len(self._ahead) or 1, AHEAD_LEAD_S, self._stop)
                    if not blocks and self.player.finished:
                        latest = self._history.latest()
                        end = latest[0] if latest else self.clock.now()
                        self.clock.sleep_until(end, self._stop)  # the last shape is due (ahead of time: not yet)
                        self._history.append(end, self._mouth.close())
                        self._active = False
                        log.info("%s: end of audio", self.label)
                        self.ended.set()
                        return
                    for block in blocks:
                        self._process(block, in_time)
                    continue
                for block in blocks:
                    self._process(block)
        except Exception:
            log.exception("audio analysis failed; the mouth stays closed")
            self._history.append(time.monotonic(), self._mouth.close())
            self._active = False
        finally:
            if self.player is not None and self.player.finished:
                self.ended.set()

    def _close_for_loss(self) -> None:
        if not self._mouth_closed_for_loss:
            self._history.append(time.monotonic(), self._mouth.close())
            self._active = False
            self._analyzer.reset()
            self._mouth_closed_for_loss = True

    def _analyse_ahead(self, samples: list[np.ndarray]) -> None:
        """Analyse the file's next hops now, in one pass; `_process` delivers them one by one."""
        if not samples:
            return
        t0 = time.perf_counter()
        features = self._analyzer.push_many(samples)
        weights = self.templates.weights_many(np.stack([f.mfcc for f in features]))
        for f, w in zip(features, weights, strict=True):
            shape = self._mouth.step(f, w)
            self._ahead.append((f.level_db, shape, self._mouth.active))
        per_hop_ms = (time.perf_counter() - t0) * 1000.0 / len(samples)
        self._analysis_ms.extend([per_hop_ms] * len(samples))

    def _can_run_ahead(self) -> bool:
        """A file whose blocks nobody needs on time: only the history (time-stamped) takes them."""
        return (self.player is not None and self.player.realtime and not self._pcm_listeners
                and not self._block_listeners and self._playback is None)

    def _process(self, block: AudioBlock, in_time: bool = True) -> None:
        was_active = self._active
        if self._ahead:
            level_db, shape, self._active = self._ahead.popleft()
        else:
            t0 = time.perf_counter()
            features = self._analyzer.push(block.samples)
            shape = self._mouth.step(features)
            level_db, self._active = features.level_db, self._mouth.active
            self._analysis_ms.append((time.perf_counter() - t0) * 1000.0)
        self._history.append(block.end_ts, shape)
        self.last_level_db = level_db
        if self._active and not was_active:
            self._onsets.append((block.end_ts, time.monotonic()))
        self.blocks += 1
        if not in_time:
            return
        if self._playback is not None:
            self._playback.write(block.samples)
        for i, cb in enumerate(self._pcm_listeners):  # remove_pcm_listener replaces the list: safe to iterate
            self._call(i, cb, block.capture_ts, block.samples)
        for j, bl in enumerate(self._block_listeners):
            self._call(1000 + j, bl, block)
        for j, bl in enumerate(self._untimed_listeners):
            self._call(2000 + j, bl, block)

    def _call(self, key: int, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a broken listener never stops the audio
            n = self._listener_errors.get(key, 0) + 1
            self._listener_errors[key] = n
            if n == 1:
                log.warning("audio listener %r failed (%s); further errors are only counted", fn, exc)

    def stats(self) -> dict[str, Any]:
        vad = self._mouth.vad
        out: dict[str, Any] = {
            "input": self.label,
            "blocks": self.blocks,
            "analysis_ms": percentiles(list(self._analysis_ms)),
            "voice_active": self.voice_active,
            "onsets": vad.onsets,
            "level_dbfs": round(self.last_level_db, 1),
            "noise_floor_dbfs": round(vad.floor_db, 1) if vad.floor_db is not None else None,
            "vowel": self._mouth.last_vowel,
            "templates": self.templates.source,
            "listener_errors": sum(self._listener_errors.values()),
        }
        if self.mic is not None:
            out["mic"] = self.mic.stats()
        if self.player is not None:
            out["file"] = {
                "duration_s": self.player.duration_s,
                "passes": self.player.passes,
                "lag_ms": percentiles(list(self.player.lag_ms), (50, 95, 99)),
                "reanchors": self.player.reanchors,
                "decode_errors": self.player.reader.decode_errors,
            }
        if self._playback is not None:
            out["playback"] = {
                "latency_ms": round(self._playback.latency_s * 1000.0, 1),
                "underruns": self._playback.underruns,
                "dropped_samples": self._playback.dropped,
            }
        return out
