"""Audio blocks: ~10 ms of 16 kHz mono audio stamped with its capture time.

Every block is mono float32 at the analysis rate (16 kHz) and carries
`capture_ts`: the `time.monotonic()` instant its first sample was captured (for
a file played in real time: the instant it would have been captured now).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from src.core.errors import CaptureError


class AudioInputError(CaptureError):
    """An audio input (microphone or file) that cannot be opened or decoded."""


@dataclass(slots=True)
class AudioBlock:
    """About 10 ms of mono audio at the analysis rate."""

    samples: np.ndarray  # (n,) float32 in [-1, 1]
    capture_ts: float  # time.monotonic() of samples[0]
    index: int  # 0, 1, 2, ... in stream order
    sample_rate_hz: int = 16000
    # When the samples reached the capture callback (monotonic): (offset, ts) pairs, in order;
    # samples[offset:] arrived at ts or later. Empty for files (nothing "arrives").
    arrivals: list[tuple[int, float]] = field(default_factory=list)
    media_time_s: float | None = None  # position in a file (None for a microphone)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz

    @property
    def end_ts(self) -> float:
        """Capture time just after the last sample."""
        return self.capture_ts + self.duration_s

    @property
    def arrival_ts(self) -> float | None:
        """When the whole block had reached the capture callback (None for files)."""
        return self.arrivals[-1][1] if self.arrivals else None

    def arrival_of(self, offset: int) -> float | None:
        """When sample `offset` reached the capture callback."""
        found: float | None = None
        for start, ts in self.arrivals:
            if start > offset:
                break
            found = ts
        if found is None and self.arrivals:
            found = self.arrivals[0][1]
        return found
