"""MP4 files that survive a crash: written fragmented, made a plain MP4 at a clean stop.

A plain MP4 keeps its index (`moov`) at the end, written when the file is closed: a process
killed before that leaves a file no player opens. FileOutput therefore writes fragmented MP4
(a sample-less `moov` written with the first fragment, once the AAC encoder's priming delay is
known, then self-contained `moof`+`mdat` fragments of at most `FRAGMENT_S`), which plays up to
the last fragment written, audio included and in sync. The muxer flushes
its buffer after every packet, so a fragment is in the file (the OS's page cache) as soon as it
is complete: a SIGKILL loses at most the fragment being filled plus the encoder's delay.
Live, the encoder runs without look-ahead or B-frames (x264 `zerolatency`), so that delay is
zero frames.

At a clean stop `finalize()` remuxes the fragments into a plain MP4 (stream copy, index at the
front) next to the file and renames it over the original in one step: a crash during the remux
leaves the playable fragmented file, never a half-written plain one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av

from src.core.runtime.threads import cpu_count

log = logging.getLogger(__name__)

FRAGMENT_S = 0.5  # a fragment is closed once it holds this much (and at every keyframe)
KEYFRAME_S = 1.0  # live: a keyframe at least this often, so a player can start at any second
INTERLEAVE_S = 0.5  # the muxer waits at most this long for a silent stream before writing the others


FRAGMENTABLE_SUFFIXES = (".mp4", ".m4v", ".mov")  # the other containers FFmpeg writes as the name says


def applies(path: str | Path) -> bool:
    """True for a file name FFmpeg writes as MP4/QuickTime (Matroska and others are left as they are)."""
    return Path(path).suffix.lower() in FRAGMENTABLE_SUFFIXES


def container_options() -> dict[str, str]:
    """Muxer options for a fragmented MP4 (PyAV `av.open(..., options=...)`)."""
    return {
        "movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof",
        "frag_duration": str(int(FRAGMENT_S * 1e6)),
        "max_interleave_delta": str(int(INTERLEAVE_S * 1e6)),
        "flush_packets": "1",  # each packet to the OS at once, not held in a 256 KB buffer
    }


def keyframe_interval(fps: float) -> int:
    """Frames between keyframes at `fps` (at least 1)."""
    return max(1, int(KEYFRAME_S * fps))


def encoder_options(crf: int, preset: str, fps: float, live: bool) -> dict[str, str]:
    """libx264 options: the configured quality; live, a keyframe each `KEYFRAME_S` and no encoder delay.

    Live, one encoder thread: a 512 px frame takes a few ms, and frame threads would add a frame
    of delay each. Offline, x264 keeps its own look-ahead and keyframe interval (fragments need no
    keyframes to play from the start of the file) and gets one thread fewer than the CPUs: the
    animate stage keeps one busy, and x264's default (1.5 threads per CPU) spent 18 % more CPU a
    frame here for the same quality (2.46 against 2.02 ms of CPU a 512 px frame on 2 CPUs)."""
    opts = {"crf": str(crf), "preset": preset}
    if live:
        opts.update({"g": str(keyframe_interval(fps)), "tune": "zerolatency", "threads": "1"})
    else:
        opts["threads"] = str(max(1, cpu_count() - 1))
    return opts


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.remux{path.suffix or '.mp4'}")


def finalize(path: str | Path) -> bool:
    """Remux the fragmented MP4 at `path` into a plain MP4, in place; True when done.

    A file that cannot be remuxed (empty, unreadable) is left as it is, fragmented and playable,
    with a warning: the recording is never lost to the conversion."""
    path = Path(path)
    tmp = _temp_path(path)
    if not path.is_file() or path.stat().st_size == 0:  # nothing was written (no frame reached the file)
        return False
    try:
        with av.open(str(path)) as src:
            streams = [s for s in src.streams if s.type in ("video", "audio")]
            if not streams:
                return False
            with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as dst:
                mapping = {s.index: dst.add_stream_from_template(s) for s in streams}
                for packet in src.demux(streams):
                    if packet.dts is None:  # the demuxer's flush packets
                        continue
                    packet.stream = mapping[packet.stream_index]
                    dst.mux(packet)
        os.replace(tmp, path)
        return True
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.warning("%s: kept as fragmented MP4 (plays everywhere but seeks slowly): remux failed (%s)", path, exc)
        tmp.unlink(missing_ok=True)
        return False


def span_s(path: str | Path) -> dict[str, float]:
    """Seconds of each stream ('video', 'audio') that a file holds, from its packets' end times."""
    out: dict[str, float] = {}
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type in ("video", "audio")]
        for s in streams:
            out[s.type] = 0.0
        for p in c.demux(streams):
            if p.pts is None or p.time_base is None:
                continue
            t = float((p.pts + (p.duration or 0)) * p.time_base)
            out[p.stream.type] = max(out[p.stream.type], t)
    return out
