"""A session's voice from text: utterances are synthesised in order, played through the session's
audio mixer, drive the mouth from the engine's phoneme timings, and announce caption cues.

`say()` queues text (synthesis runs on this object's own thread, so a request never waits
for it); `pull()` is the mixer's source; `interrupt()` clears the queue and what is playing
at once (the next 20 ms block is silent) and the phoneme mouth closes with it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from src.audio.lipsync.track import MouthTrack
from src.core.config import AppConfig
from src.core.frames import MouthShape
from src.core.runtime.threads import name_os_thread
from src.serve.push_sources import STREAM_RATE_HZ

if TYPE_CHECKING:
    from src.pipeline.live import MouthSource

log = logging.getLogger(__name__)

_SYNTH_LOCK = threading.Lock()  # espeak-ng keeps process-wide state: one synthesis at a time
MAX_QUEUED = 32


@dataclass
class Playing:
    """An utterance in the play queue (`t0`: monotonic time of its first sample, once started)."""

    samples: np.ndarray  # float32 mono at STREAM_RATE_HZ
    text: str
    words: tuple  # WordEvent
    mouth: MouthTrack | None
    duration_s: float
    pos: int = 0
    t0: float | None = None


def to_stream_rate(pcm: np.ndarray, rate_hz: int) -> np.ndarray:
    """A whole utterance at STREAM_RATE_HZ (polyphase, in C: ~2 ms for 1.5 s; the streaming resampler's
    NumPy path took 50-130 ms, and 0.8 s to design its filter for 22,050 Hz)."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate_hz), STREAM_RATE_HZ)
    return np.asarray(resample_poly(np.asarray(pcm, np.float32), STREAM_RATE_HZ // g, int(rate_hz) // g), np.float32)


class Speaker:
    """Text to speech for one session (see the module doc)."""

    def __init__(self, config: AppConfig, on_start: Callable[[Playing], None] | None = None,
                 name: str = "session-tts") -> None:
        self.config = config
        self.on_start = on_start
        self._requests: queue.Queue[tuple[int, str, str] | None] = queue.Queue()
        self._play: deque[Playing] = deque()
        self._current: Playing | None = None
        self._recent: deque[Playing] = deque(maxlen=4)  # started utterances (the mouth looks them up by time)
        self._lock = threading.Lock()
        self._generation = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.spoken = 0
        self.interrupted = 0
        self.failed = 0
        self.last_error: str | None = None
        self.first_sample_at: float | None = None  # monotonic time the newest utterance started playing

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.interrupt()
        self._requests.put(None)
        if self._thread.ident is not None:
            self._thread.join(5.0)

    def say(self, text: str, voice: str) -> int:
        """Queue `text`; returns the queue length (synthesis waiting plus playing). Validation of text and
        voice happens before this (see `check_request`)."""
        with self._lock:
            if self.queue_length() >= MAX_QUEUED:
                raise OverflowError(f"{MAX_QUEUED} utterances are already queued; wait or interrupt")
            gen = self._generation
        self._requests.put((gen, text, voice))
        return self.queue_length()

    def interrupt(self) -> None:
        with self._lock:
            self._generation += 1
            if self._current is not None or self._play:
                self.interrupted += 1
            self._play.clear()
            self._current = None
            self._recent.clear()
        while True:  # drop waiting requests
            try:
                item = self._requests.get_nowait()
            except queue.Empty:
                break
            if item is None:  # a stop: keep it
                self._requests.put(None)
                break

    def queue_length(self) -> int:
        return self._requests.qsize() + len(self._play) + (1 if self._current is not None else 0)

    @property
    def speaking(self) -> bool:
        return self._current is not None or bool(self._play)

    # -- the synthesis thread ------------------------------------------------------------------
    def _run(self) -> None:
        name_os_thread()
        import scipy.signal  # noqa: F401 - to_stream_rate's, imported here while the session starts, not at the first say

        from src.audio.tts import synthesize
        from src.core.runtime.threads import limit_blas

        limit_blas()  # SciPy's own OpenBLAS, loaded by that import: one thread, like NumPy's
        from src.audio.tts.mouth import utterance_mouth_track

        fps = self.config.pipeline.fps
        tts = self.config.audio.tts
        while True:
            item = self._requests.get()
            if item is None:
                return
            gen, text, voice = item
            if gen != self._generation:
                continue
            try:
                with _SYNTH_LOCK:
                    utt = synthesize(text, voice, engine=tts.engine, config=self.config)
                mouth = utterance_mouth_track(utt, fps, self.config)
                samples = to_stream_rate(utt.pcm, utt.sample_rate_hz)
            except Exception as exc:  # noqa: BLE001 - one bad utterance never ends the session
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("text to speech failed: %s", self.last_error)
                continue
            with self._lock:
                if gen == self._generation:
                    self._play.append(Playing(samples.astype(np.float32), text, utt.words, mouth, utt.duration_s))

    # -- the audio clock thread ----------------------------------------------------------------
    def pull(self, n: int) -> np.ndarray | None:
        started: list[Playing] = []
        out = np.zeros(n, np.float32)
        got = 0
        with self._lock:
            while got < n:
                cur = self._current
                if cur is None:
                    if not self._play:
                        break
                    cur = self._current = self._play.popleft()
                    # the block being filled starts about now; this utterance's first sample is `got` into it
                    cur.t0 = time.monotonic() - n / STREAM_RATE_HZ + got / STREAM_RATE_HZ
                    self._recent.append(cur)
                    started.append(cur)
                k = min(n - got, len(cur.samples) - cur.pos)
                out[got : got + k] = cur.samples[cur.pos : cur.pos + k]
                cur.pos += k
                got += k
                if cur.pos >= len(cur.samples):
                    self._current = None
                    self.spoken += 1
        for p in started:
            self.first_sample_at = p.t0
            if self.on_start is not None:
                try:
                    self.on_start(p)
                except Exception as exc:  # noqa: BLE001 - captions never stop the voice
                    log.debug("utterance start hook failed: %s", exc)
        return out if got else None

    # -- the mouth -----------------------------------------------------------------------------
    def mouth_at(self, t: float) -> MouthShape | None:
        """The phoneme-timed mouth of the utterance playing at monotonic time `t`, or None."""
        with self._lock:
            recent = list(self._recent)
        for p in reversed(recent):
            if p.t0 is not None and p.mouth is not None and p.t0 <= t < p.t0 + p.duration_s:
                return p.mouth.at(t - p.t0)
        return None


class SessionMouth:
    """The pipeline's mouth source: the TTS phoneme mouth while an utterance plays, else the analysed audio.

    `lag_s()`: how much later the viewers hear the voice than they see a frame made now (the audio path is
    slower than the video's); the mouth drawn at `t` is the one of `t - lag`, so both arrive together."""

    def __init__(self, speaker: Speaker, audio: MouthSource, lag_s: Callable[[], float] | None = None) -> None:
        self.speaker = speaker
        self.audio = audio
        self.lag_s = lag_s or (lambda: 0.0)

    def mouth_at(self, t: float) -> MouthShape:
        t = t - max(0.0, self.lag_s())
        shape = self.speaker.mouth_at(t)
        if shape is not None:
            return shape
        return self.audio.mouth_at(t)
