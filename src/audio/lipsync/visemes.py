"""Rhubarb-style mouth shapes (A-H, X) on a timeline, and their per-video-frame MouthShape values.

Shapes (ANCHORS.md): A closed (P B M); B slightly open, teeth (K S T EE); C open
(EH AE); D wide open (AA); E rounded (AO ER); F puckered (UW OW W); G upper teeth
on lower lip (F V); H tongue up (L); X idle. R is our "relaxed" shape for
medium pauses: a third of the shape before it.

Rules: speech regions (from voice activity, precise to 10 ms) decide when the
mouth may be open; phones (or vowel classes) decide which shape. Vowel shapes
start up to `anticipation_ms` early over preceding tongue/teeth consonants;
shapes shorter than `min_shape_ms` merge into a neighbour; pauses shorter than
`hold_pause_ms` hold the shape, shorter than `relax_pause_ms` relax (R), longer
ones close (X) as soon as the sound stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.audio.lipsync.phones import PhoneSegment
from src.core.config import VisemeConfig
from src.core.frames import MouthShape

# open as a fraction of max_open; width, round, closed as in MouthShape
SHAPE_PARAMS: dict[str, tuple[float, float, float, float]] = {
    "X": (0.0, 0.0, 0.0, 0.0),
    "A": (0.0, 0.0, 0.0, 1.0),
    "B": (0.20, 0.12, 0.0, 0.0),  # slightly open, teeth: visibly parted (at 0.12 the lips barely moved)
    "C": (0.50, 0.10, 0.0, 0.0),
    "D": (0.92, 0.05, 0.0, 0.0),
    "E": (0.50, -0.10, 0.5, 0.0),
    "F": (0.20, -0.25, 1.0, 0.0),
    "G": (0.08, 0.05, 0.0, 0.4),
    "H": (0.37, 0.05, 0.0, 0.0),
}
RELAX_FRACTION = 1.0 / 3.0

PHONE_SHAPES: dict[str, str] = {
    "AA": "D", "AE": "C", "AH": "C", "AO": "E", "EH": "C", "ER": "E", "IH": "B", "IY": "B", "UH": "F", "UW": "F",
    "P": "A", "B": "A", "M": "A", "F": "G", "V": "G", "L": "H", "W": "F", "R": "E", "Y": "B",
    "T": "B", "D": "B", "N": "B", "S": "B", "Z": "B", "TH": "B", "DH": "B", "K": "B", "G": "B", "NG": "B",
    "CH": "B", "JH": "B", "SH": "B", "ZH": "B",
}
DIPHTHONGS: dict[str, tuple[str, str]] = {"AW": ("D", "F"), "AY": ("D", "B"), "EY": ("C", "B"), "OW": ("E", "F"), "OY": ("E", "B")}
VOWEL_PHONES = {"AA", "AE", "AH", "AO", "EH", "ER", "IH", "IY", "UH", "UW", *DIPHTHONGS}
SOFT_SHAPES = {"B", "H"}  # consonant shapes a following vowel may overwrite (anticipation)
# the live classifier's classes as shapes (fallback method)
CLASS_SHAPES = {"A": "D", "I": "B", "U": "F", "E": "C", "O": "E", "N": "B"}


@dataclass(slots=True)
class Seg:
    start: float
    end: float
    shape: str
    vowel: bool = False
    scale: float = 1.0  # R segments: fraction of `base`
    base: str = ""

    @property
    def dur(self) -> float:
        return self.end - self.start


def phone_shape_segments(phones: list[PhoneSegment]) -> list[Seg]:
    """Shape segments from recognised phones (silences dropped; HH takes the next vowel's shape)."""
    out: list[Seg] = []
    speech = [p for p in phones if not p.is_silence]
    for i, p in enumerate(speech):
        name = p.phone.upper()
        if name in DIPHTHONGS:
            a, b = DIPHTHONGS[name]
            mid = p.start_s + 0.5 * (p.end_s - p.start_s)
            out += [Seg(p.start_s, mid, a, True), Seg(mid, p.end_s, b, True)]
            continue
        if name == "HH":
            nxt = speech[i + 1].phone.upper() if i + 1 < len(speech) else ""
            shape = DIPHTHONGS[nxt][0] if nxt in DIPHTHONGS else PHONE_SHAPES.get(nxt, "B") if nxt in VOWEL_PHONES else "B"
            out.append(Seg(p.start_s, p.end_s, shape, False))
            continue
        out.append(Seg(p.start_s, p.end_s, PHONE_SHAPES.get(name, "B"), name in VOWEL_PHONES))
    return out


def class_shape_segments(classes: list[str], hop_s: float, t0: float = 0.0) -> list[Seg]:
    """Shape segments from per-hop vowel classes ('' = no voice), run-length encoded."""
    out: list[Seg] = []
    for i, c in enumerate(classes):
        if not c:
            continue
        shape = CLASS_SHAPES.get(c, "B")
        s = t0 + i * hop_s
        if out and out[-1].shape == shape and abs(out[-1].end - s) < 1e-9:
            out[-1].end = s + hop_s
        else:
            out.append(Seg(s, s + hop_s, shape, c in "AIUEO"))
    return out


def _pause(start: float, end: float, prev: Seg | None, cfg: VisemeConfig) -> Seg | None:
    """What a pause between shapes shows: None (hold the previous shape), R or X."""
    gap_ms = (end - start) * 1000.0
    if prev is not None and gap_ms < cfg.hold_pause_ms:
        return None
    if prev is not None and gap_ms < cfg.relax_pause_ms and prev.shape not in ("X", "R"):
        return Seg(start, end, "R", scale=RELAX_FRACTION, base=prev.shape)
    return Seg(start, end, "X")


def build_timeline(shapes: list[Seg], regions: list[tuple[float, float]], cfg: VisemeConfig, duration_s: float) -> list[Seg]:
    """A gap-free timeline of shape segments from 0 to `duration_s`."""
    timeline: list[Seg] = []
    for rs, re_ in regions:
        inside = [Seg(max(s.start, rs), min(s.end, re_), s.shape, s.vowel) for s in shapes if s.end > rs and s.start < re_]
        inside = [s for s in inside if s.dur > 1e-6]
        if not inside:
            inside = [Seg(rs, re_, "C", True)]  # voice without a recognised phone: a neutral open shape
        inside[0].start = rs
        inside[-1].end = re_
        filled: list[Seg] = []
        for s in inside:
            if filled and s.start > filled[-1].end + 1e-6:
                p = _pause(filled[-1].end, s.start, filled[-1], cfg)
                if p is None:
                    filled[-1].end = s.start
                else:
                    filled.append(p)
            if filled and s.start < filled[-1].end:
                s.start = filled[-1].end
            if s.dur > 1e-6:
                filled.append(s)
        _anticipate(filled, cfg.anticipation_ms / 1000.0)
        if timeline:
            p = _pause(timeline[-1].end, filled[0].start, timeline[-1], cfg)
            if p is None:
                timeline[-1].end = filled[0].start
            else:
                timeline.append(p)
        elif filled[0].start > 0:
            timeline.append(Seg(0.0, filled[0].start, "X"))
        timeline.extend(filled)
    if not timeline:
        return [Seg(0.0, max(duration_s, 0.0), "X")]
    if timeline[-1].end < duration_s:
        timeline.append(Seg(timeline[-1].end, duration_s, "X"))
    timeline = _min_duration(timeline, cfg.min_shape_ms / 1000.0)
    _lead_onsets(timeline, cfg.onset_lead_ms / 1000.0)
    return _merge_same(timeline)


def _anticipate(segs: list[Seg], max_s: float) -> None:
    """Start each vowel shape up to `max_s` early over the soft consonants just before it."""
    for i, v in enumerate(segs):
        if not v.vowel or i == 0:
            continue
        j = i
        while j > 0 and segs[j - 1].shape in SOFT_SHAPES and not segs[j - 1].vowel:
            j -= 1
        if j == i:
            continue
        new_start = max(v.start - max_s, segs[j].start)
        for k in range(j, i):
            c = segs[k]
            c.end = min(c.end, new_start)
            c.start = min(c.start, c.end)
        v.start = new_start
    segs[:] = [s for s in segs if s.dur > 1e-6]


def _min_duration(segs: list[Seg], min_s: float) -> list[Seg]:
    """Merge shapes shorter than `min_s` into a neighbour (closures grow instead: lips must be seen to meet)."""
    segs = [s for s in segs if s.dur > 1e-9]
    for _ in range(4 * len(segs) + 8):
        short = [i for i, s in enumerate(segs) if s.dur < min_s - 1e-9 and s.shape != "X"]
        if not short:
            break
        i = min(short, key=lambda k: segs[k].dur)
        s = segs[i]
        prev = segs[i - 1] if i > 0 else None
        nxt = segs[i + 1] if i + 1 < len(segs) else None
        if s.shape == "A" or (prev is None or prev.shape == "X") and (nxt is None or nxt.shape == "X"):
            # grow into the longer neighbour that can spare the time (a closure, or a lone short sound)
            need = min_s - s.dur
            donors = sorted([n for n in (prev, nxt) if n is not None and n.dur - need > min_s * 0.5], key=lambda n: -n.dur)
            if not donors:
                s.shape = prev.shape if prev is not None and prev.shape != "X" else s.shape
                if prev is not None and prev.shape == s.shape:
                    prev.end = s.end
                    segs.pop(i)
                    continue
                if nxt is not None and nxt.shape != "X":
                    nxt.start = s.start
                    segs.pop(i)
                    continue
                s.vowel = s.vowel or s.shape != "A"
                break
            d = donors[0]
            if d is prev:
                prev.end -= need
                s.start -= need
            else:
                d.start += need
                s.end += need
            continue
        # absorb into the longer non-X neighbour
        options = [n for n in (prev, nxt) if n is not None and n.shape != "X"]
        target = max(options, key=lambda n: n.dur)
        if target is prev:
            prev.end = s.end
        else:
            target.start = s.start
        segs.pop(i)
    return segs


def _lead_onsets(segs: list[Seg], lead_s: float) -> None:
    """Lips part a little before the sound: move each X -> shape boundary earlier by `lead_s`."""
    for i in range(1, len(segs)):
        if segs[i - 1].shape == "X" and segs[i].shape != "X":
            shift = min(lead_s, segs[i - 1].dur * 0.5)
            segs[i - 1].end -= shift
            segs[i].start -= shift


def _merge_same(segs: list[Seg]) -> list[Seg]:
    out: list[Seg] = []
    for s in segs:
        if out and out[-1].shape == s.shape and out[-1].base == s.base:
            out[-1].end = s.end
        else:
            out.append(s)
    return out


def shape_vector(seg: Seg, max_open: float) -> np.ndarray:
    if seg.shape == "R":
        o, w, r, c = SHAPE_PARAMS.get(seg.base, SHAPE_PARAMS["X"])
        k = seg.scale
        return np.array([o * k * max_open, w * k, r * k, 0.0], np.float32)
    o, w, r, c = SHAPE_PARAMS[seg.shape]
    return np.array([o * max_open, w, r, c], np.float32)


def sample_timeline(segs: list[Seg], times_s: np.ndarray, max_open: float, transition_ms: float) -> np.ndarray:
    """(n, 4) open/width/round/closed at `times_s`. Each shape blends in linearly from its start, from
    wherever the previous blend had got to (values are continuous): over `transition_ms` between
    shapes, over half that when the mouth opens from rest (a fast attack, as in speech)."""
    starts = np.array([s.start for s in segs])
    vecs = np.stack([shape_vector(s, max_open) for s in segs])
    tr_full = max(transition_ms / 1000.0, 1e-6)
    trs = np.array([tr_full * (0.5 if i > 0 and segs[i - 1].shape in ("X", "R") else 1.0) for i in range(len(segs))])
    from_vals = np.zeros_like(vecs)
    for i in range(1, len(segs)):
        p = min(1.0, segs[i - 1].dur / trs[i - 1])
        from_vals[i] = from_vals[i - 1] + p * (vecs[i - 1] - from_vals[i - 1])
    idx = np.clip(np.searchsorted(starts, times_s, side="right") - 1, 0, len(segs) - 1)
    p = np.clip((np.asarray(times_s) - starts[idx]) / trs[idx], 0.0, 1.0)[:, None]
    return (from_vals[idx] + p * (vecs[idx] - from_vals[idx])).astype(np.float32)


def vector_to_shape(v: np.ndarray) -> MouthShape:
    return MouthShape(float(v[0]), float(v[1]), float(v[2]), float(v[3]))
