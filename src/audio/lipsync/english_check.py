"""How English-like a file's speech sounds to pocketsphinx: the `audio.language: auto` check.

The audio the phone recogniser hears (at most `MAX_CHECK_S` of it) is kept; once the file's voice regions are
known, each stretch of speech (regions closer than `MERGE_GAP_S` joined, `PAD_BEFORE_S` / `PAD_AFTER_S` around)
is decoded again by pocketsphinx's English phone loop (the bundled US English acoustic model and phone trigram,
the weights PhoneRecognizer uses) with white noise added `CHECK_SNR_DB` under the speech's own level. The
measure, `english_fit`, is the best path's whole score (acoustic + weighted phone LM + insertion penalty) per
frame of recognised phones, x1000: how well English phones, in English order, explain the speech.

Why the score of the whole path: the acoustic fit alone ignores whether the phone sequence is English-like, and
on synthetic speech it separated languages by less than it moved with the recording's noise. Why the added
noise: the acoustic model was trained on recorded speech, which always has a noise floor; digital silence and
studio-clean speech give cepstra (and a cepstral mean) outside that, and clean files of every language scored
0.2-0.3 lower than the same files under -40 dBFS noise, more than the gap between English and other languages.
Topped up to a fixed signal-to-noise ratio, clean and noisy files score alike (figures: language.py,
ENGLISH_FIT_MIN). The phones that drive the mouth are decoded from the sound as it is; only this check hears
the added noise.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)

RATE = 16000
# Speech kept for the check, at most (a file's language does not change midway). It costs a second decode of that
# much: on 60 s of speech the analysis took 14.8-17.5 s with the check, 9.8-11.4 s without (a loaded 2-core VM).
# With 10 s the gap between English and other languages vanished (en-gb under noise -2.99, pl clean -2.86).
MAX_CHECK_S = 20.0
CHECK_SNR_DB = 25.0  # the added noise's RMS, under the RMS of the speech
MERGE_GAP_S = 0.5  # regions this close are one stretch (pauses within a sentence)
PAD_BEFORE_S, PAD_AFTER_S = 0.3, 0.5
SEED = 0  # the added noise is the same on every run: one file always gets one verdict
FILLERS = {"SIL", "<s>", "</s>", "<sil>", "(NULL)"}


class EnglishFit:
    """Fed like PhoneRecognizer (`begin(t)`, `feed(samples)` ...); `score(regions)` once the regions are known."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path  # imported here: optional at run time

        self._decoder = Decoder(
            allphone=get_model_path("en-us/en-us-phone.lm.bin"), lm=None, lw=2.0, pip=2.0, dither=True, loglevel="FATAL"
        )
        self._chunks: list[tuple[float, list[np.ndarray]]] = []  # (start_s, blocks) per stretch the recogniser heard
        self.kept_s = 0.0

    def begin(self, start_s: float) -> None:
        if self.kept_s < MAX_CHECK_S:
            self._chunks.append((start_s, []))

    def feed(self, samples: np.ndarray) -> None:
        if self._chunks and self.kept_s < MAX_CHECK_S:
            self._chunks[-1][1].append(np.asarray(samples, np.float32))
            self.kept_s += len(samples) / RATE

    def _stretches(self, regions: list[tuple[float, float]]) -> list[np.ndarray]:
        merged: list[list[float]] = []
        for s, e in regions:
            if merged and s - merged[-1][1] < MERGE_GAP_S:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        out: list[np.ndarray] = []
        for t0, blocks in self._chunks:
            if not blocks:
                continue
            x = np.concatenate(blocks)
            t1 = t0 + len(x) / RATE
            for s, e in merged:
                a, b = max(s - PAD_BEFORE_S, t0), min(e + PAD_AFTER_S, t1)
                if b - a > 0.1 and e > t0 and s < t1:
                    out.append(x[int((a - t0) * RATE) : int((b - t0) * RATE)])
        return out

    def score(self, regions: list[tuple[float, float]]) -> float | None:
        """english_fit over the kept speech (None: no speech, or nothing recognised)."""
        stretches = self._stretches(regions)
        if not stretches:
            return None
        speech = np.concatenate([x[int(PAD_BEFORE_S * RATE) : max(int(PAD_BEFORE_S * RATE) + 1, len(x) - int(PAD_AFTER_S * RATE))]
                                 for x in stretches]).astype(np.float64)
        level = math.sqrt(float(np.mean(speech**2))) if speech.size else 0.0
        if level <= 0.0:
            return None
        rng = np.random.default_rng(SEED)
        noise_rms = level * 10.0 ** (-CHECK_SNR_DB / 20.0)
        ln_sum, frames = 0.0, 0
        for x in stretches:
            y = x.astype(np.float64) + noise_rms * rng.standard_normal(len(x))
            try:
                self._decoder.start_utt()
                self._decoder.process_raw((np.clip(y, -1.0, 1.0) * 32767.0).astype("<i2").tobytes(), no_search=False, full_utt=True)
                self._decoder.end_utt()
                hyp = self._decoder.hyp()
                n = sum(s.end_frame - s.start_frame + 1 for s in self._decoder.seg()
                        if s.word not in FILLERS and not s.word.startswith("+"))
            except RuntimeError as exc:  # a decoder that found nothing in this stretch
                log.debug("English check: a stretch failed: %s", exc)
                continue
            if hyp is not None and n > 0:
                ln_sum += math.log(max(float(hyp.score), 1e-300))
                frames += n
        return 1000.0 * ln_sum / frames if frames else None
