"""Phone recognition with pocketsphinx's bundled US English acoustic model and phone language model.

Audio is fed as it is decoded, one utterance per stretch of speech (split at
long pauses and at `MAX_UTTERANCE_S`), so memory stays bounded for any length.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MAX_UTTERANCE_S = 30.0
FRAME_S = 0.01  # pocketsphinx's default frame rate is 100 frames/s
FILLERS = {"SIL", "<s>", "</s>", "<sil>", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+UM+", "+UH+", "+SMACK+", "+NOISE+"}


@dataclass(frozen=True, slots=True)
class PhoneSegment:
    """One recognised phone (CMU/ARPAbet symbol, e.g. 'AA', 'M') or 'SIL', in seconds of the file."""

    phone: str
    start_s: float
    end_s: float

    @property
    def is_silence(self) -> bool:
        return self.phone in FILLERS or self.phone.startswith("+")


class PhoneRecognizer:
    """Streaming wrapper: `begin(t)`, `feed(samples)` ..., `end()`; `segments` collects the results."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path  # imported here: optional at run time

        # The default language weight (6.5) suits word decoding; with the phone LM it drops most phones.
        # lw 2 + a phone insertion bonus recovered ~80% of the phones of espeak-ng test sentences;
        # dither keeps digital silence from giving -inf energies.
        self._decoder = Decoder(
            allphone=get_model_path("en-us/en-us-phone.lm.bin"), lm=None, lw=2.0, pip=2.0, dither=True, loglevel="FATAL"
        )
        self.segments: list[PhoneSegment] = []
        self._utt_start_s: float | None = None
        self._fed = 0
        self.utterances = 0
        # pocketsphinx's own fit of the phones to the sound: ln of each phone's acoustic score (relative to the
        # best-scoring senone of every frame, so 0 is a perfect fit) summed over the frames of recognised phones
        self.acoustic_ln_sum = 0.0
        self.phone_frames = 0

    @property
    def in_utterance(self) -> bool:
        return self._utt_start_s is not None

    def begin(self, start_s: float) -> None:
        """Start an utterance whose first sample is at `start_s` in the file."""
        if self.in_utterance:
            self.end()
        self._decoder.start_utt()
        self._utt_start_s = start_s
        self._fed = 0

    def feed(self, samples: np.ndarray) -> None:
        if self._utt_start_s is None:
            return
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._decoder.process_raw(pcm, no_search=False, full_utt=False)
        self._fed += len(samples)
        if self._fed >= MAX_UTTERANCE_S * 16000:
            start = self._utt_start_s + self._fed / 16000.0
            self.end()
            self.begin(start)

    def end(self) -> None:
        if self._utt_start_s is None:
            return
        t0 = self._utt_start_s
        self._utt_start_s = None
        try:
            self._decoder.end_utt()
            segs = list(self._decoder.seg())
        except RuntimeError as exc:  # a decoder that found nothing in this stretch
            log.debug("phone recognition: utterance at %.2f s failed: %s", t0, exc)
            return
        self.utterances += 1
        for seg in segs:
            self.segments.append(PhoneSegment(seg.word, t0 + seg.start_frame * FRAME_S, t0 + (seg.end_frame + 1) * FRAME_S))
            if seg.word not in FILLERS and not seg.word.startswith("+"):
                self.acoustic_ln_sum += math.log(max(float(seg.ascore), 1e-300))
                self.phone_frames += seg.end_frame - seg.start_frame + 1

    @property
    def acoustic_fit(self) -> float | None:
        """Mean ln acoustic score per frame of the recognised phones, x1000 (0 = every frame's best senone)."""
        return 1000.0 * self.acoustic_ln_sum / self.phone_frames if self.phone_frames else None
