"""Timed caption cues from an utterance's word timings, and a WebVTT file of them.

Words are grouped into cues of at most `max_words` words or `max_chars` characters,
breaking early after a sentence end or at a pause of `pause_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from src.audio.tts.base import WordEvent


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


def caption_cues(words: tuple[WordEvent, ...] | list[WordEvent], offset_s: float = 0.0, max_words: int = 7,
                 max_chars: int = 42, pause_s: float = 0.6) -> list[Cue]:
    cues: list[Cue] = []
    group: list[WordEvent] = []

    def flush() -> None:
        if group:
            cues.append(Cue(offset_s + group[0].start_s, offset_s + group[-1].end_s, " ".join(w.text for w in group)))
            group.clear()

    for w in words:
        if group and (len(group) >= max_words or len(" ".join(x.text for x in group)) + 1 + len(w.text) > max_chars
                      or w.start_s - group[-1].end_s >= pause_s):
            flush()
        group.append(w)
        if w.text[-1:] in ".!?。！？":
            flush()
    flush()
    return cues


def _stamp(t: float) -> str:
    ms = max(0, int(round(t * 1000.0)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def webvtt(cues: list[Cue]) -> str:
    lines = ["WEBVTT", ""]
    for i, c in enumerate(cues, 1):
        end = max(c.end_s, c.start_s + 0.3)  # a cue shorter than 300 ms cannot be read
        lines += [str(i), f"{_stamp(c.start_s)} --> {_stamp(end)}", c.text, ""]
    return "\n".join(lines)


def write_webvtt(path: str | Path, cues: list[Cue]) -> Path:
    path = Path(path)
    path.write_text(webvtt(cues), encoding="utf-8")
    return path
