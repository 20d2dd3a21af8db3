"""Audio -> mouth -> pixels, measured from a written mp4: MediaPipe re-detects the mouth in every frame,
and the file's own audio track says when there was speech.

    times, opening = mouth_openings(mp4)        # per frame: presentation time (s), inner-lip gap / IOD
    regions = speech_regions(wav, mp4)          # [(start_s, end_s), ...] where the mp4's audio plays the speech
    check_mouth_follows_speech(times, opening, regions, rest)  # rest: the idle-only render's median   # AssertionError if not
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from src.audio import decode_audio
from src.bench.audio import truth_regions
from src.capture.face_tracker import FaceTracker
from src.core.face_mesh import measure

OPEN_MARGIN = 0.12  # a speaking mouth opens at least this much (inner-lip gap / IOD) above rest: seen 0.2-0.45
REST_MARGIN = 0.06  # in silence the mouth stays within this of rest: seen within 0.02
SETTLE_S = 0.35  # the mouth may still close (or already open) this long around a speech region
EDGE_S = 0.1  # speech frames: inside a region by this much


def mouth_openings(video: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Per decoded frame: (presentation time in s, mouth opening in IODs; NaN where no face is found)."""
    times: list[float] = []
    opening: list[float] = []
    with av.open(str(video)) as container, FaceTracker(max_faces=1) as tracker:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            times.append(float(frame.pts * stream.time_base))
            faces = tracker.process(frame.to_ndarray(format="bgr24"))
            opening.append(measure(faces[0].landmarks).mouth_open if faces else float("nan"))
    return np.array(times), np.array(opening)


def speech_regions(source: str | Path, video: str | Path | None = None) -> list[tuple[float, float]]:
    """Where the speech file `source` has speech; with `video`, on the timeline of that mp4's audio track
    (the source located in it by cross-correlation), so frames are judged against what the file plays."""
    speech = decode_audio(source)
    regions = truth_regions(speech)
    if video is None:
        return regions
    offset = audio_offset_s(speech, decode_audio(video))
    return [(a + offset, b + offset) for a, b in regions]


def audio_offset_s(speech: np.ndarray, muxed: np.ndarray, rate_hz: int = 16000) -> float:
    """Where `speech` starts in `muxed` (seconds; both 16 kHz mono), by FFT cross-correlation."""
    n = 1 << int(np.ceil(np.log2(len(speech) + len(muxed))))
    corr = np.fft.irfft(np.fft.rfft(muxed, n) * np.conj(np.fft.rfft(speech, n)), n)
    lag = int(np.argmax(corr))
    if lag > n // 2:
        lag -= n
    return lag / rate_hz


def check_mouth_follows_speech(times: np.ndarray, opening: np.ndarray, regions: list[tuple[float, float]],
                               rest: float) -> dict[str, float]:
    """Assert that the mouth opens in every speech region and rests (near `rest`) in the silences between
    and around them. Returns the figures it judged (for the test log)."""
    assert len(regions) >= 2, f"expected speech with a pause in it, found regions {regions}"
    assert np.isfinite(opening).mean() >= 0.95, "a face was re-detected in nearly every frame"
    near_speech = np.zeros(len(times), bool)
    figures: dict[str, float] = {}
    for k, (a, b) in enumerate(regions):
        inside = (times >= a + EDGE_S) & (times <= b - EDGE_S) & np.isfinite(opening)
        assert inside.sum() >= 5, f"speech region {a:.2f}-{b:.2f} s has too few frames"
        speaking = float(np.percentile(opening[inside], 75))
        figures[f"speech{k}_p75"] = speaking
        assert speaking >= rest + OPEN_MARGIN, (
            f"the mouth did not open during speech {a:.2f}-{b:.2f} s: p75 opening {speaking:.3f}, rest {rest:.3f}")
        near_speech |= (times >= a - SETTLE_S) & (times <= b + SETTLE_S)
    silent = ~near_speech & np.isfinite(opening) & (times <= times[-1])
    assert silent.sum() >= 10, "the clip has silence to judge"
    quiet = float(np.percentile(opening[silent], 95))
    figures["silence_p95"] = quiet
    figures["rest"] = rest
    assert abs(quiet - rest) <= REST_MARGIN, f"the mouth did not rest in silence: p95 opening {quiet:.3f}, rest {rest:.3f}"
    return figures
