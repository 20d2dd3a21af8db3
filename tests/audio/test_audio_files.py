"""Audio files of every common kind decode to the same 16 kHz mono signal, stream in bounded memory,
and every bad input is a one-line user error naming the file."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import pytest

from src.audio import AudioInputError, decode_audio, iter_audio_blocks, probe_audio
from src.core.errors import UserError

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("espeak-ng", "sox", "ffmpeg")), reason="needs espeak-ng, sox and ffmpeg"
)


def run(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio_files")
    ref = d / "ref.wav"
    run("espeak-ng", "-v", "en-us", "-w", str(d / "es.wav"), "Hello there, this is a test of the audio decoder.")
    run("sox", str(d / "es.wav"), "-r", "16000", str(ref))
    files = {"ref": ref}
    sox_variants = {
        "8k.wav": ["-r", "8000"],
        "stereo44k.wav": ["-r", "44100", "-c", "2"],
        "24bit48k.wav": ["-r", "48000", "-b", "24"],
        "float.wav": ["-e", "floating-point", "-b", "32"],
    }
    for name, opts in sox_variants.items():
        run("sox", str(ref), *opts, str(d / name))
        files[name] = d / name
    run("sox", str(ref), str(d / "clipped.wav"), "gain", "18")
    files["clipped.wav"] = d / "clipped.wav"
    for ext in ("mp3", "ogg", "flac", "m4a"):
        run("ffmpeg", "-loglevel", "error", "-y", "-i", str(ref), str(d / f"speech.{ext}"))
        files[ext] = d / f"speech.{ext}"
    run("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=3:size=64x64:rate=10", "-i", str(ref),
        "-shortest", "-c:v", "mpeg4", "-c:a", "aac", str(d / "with_audio.mp4"))
    files["with_audio.mp4"] = d / "with_audio.mp4"
    run("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=10",
        "-c:v", "mpeg4", str(d / "silent_video.mp4"))
    files["silent_video.mp4"] = d / "silent_video.mp4"
    return files


def _offset_and_corr(x: np.ndarray, ref: np.ndarray) -> tuple[int, float]:
    n = min(len(x), len(ref))
    a, b = x[:n].astype(np.float64), ref[:n].astype(np.float64)
    c = np.correlate(a, b[400 : n - 400], mode="valid")
    off = int(np.argmax(c)) - 400
    shifted = a[400 + off : n - 400 + off]
    corr = float(np.corrcoef(shifted, b[400 : n - 400])[0, 1])
    return off, corr


@pytest.mark.parametrize("name", ["8k.wav", "stereo44k.wav", "24bit48k.wav", "float.wav", "mp3", "ogg", "flac", "m4a",
                                  "with_audio.mp4"])
def test_every_format_decodes_to_the_same_16k_mono_signal(media: dict[str, Path], name: str) -> None:
    ref = decode_audio(media["ref"])
    x = decode_audio(media[name])
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - len(ref)) <= 0.02 * 16000  # same length within 20 ms (codec padding)
    off, corr = _offset_and_corr(x, ref)
    assert abs(off) <= 1, "decoded audio starts at the same instant"
    assert corr > (0.9 if name == "8k.wav" else 0.97)


def test_clipped_input_stays_within_full_scale(media: dict[str, Path]) -> None:
    x = decode_audio(media["clipped.wav"])
    assert np.max(np.abs(x)) <= 1.0
    assert np.mean(np.abs(x) > 0.99) > 0.001  # it really is clipped


def test_blocks_are_fixed_size_and_add_up(media: dict[str, Path]) -> None:
    blocks = list(iter_audio_blocks(media["stereo44k.wav"], block_s=0.01))
    assert all(len(b) == 160 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 160
    np.testing.assert_allclose(np.concatenate(blocks), decode_audio(media["stereo44k.wav"]), atol=1e-6)


def test_probe_reports_duration_and_format(media: dict[str, Path]) -> None:
    info = probe_audio(media["stereo44k.wav"])
    assert info.native_rate_hz == 44100 and info.channels == 2
    assert info.duration_s == pytest.approx(len(decode_audio(media["ref"])) / 16000, abs=0.02)


def test_video_file_uses_its_audio_track(media: dict[str, Path]) -> None:
    info = probe_audio(media["with_audio.mp4"])
    assert info.has_video
    off, corr = _offset_and_corr(decode_audio(media["with_audio.mp4"]), decode_audio(media["ref"]))
    assert abs(off) <= 1 and corr > 0.97


def _one_line_error(path: Path, *, contains: str) -> str:
    with pytest.raises(UserError) as err:
        list(iter_audio_blocks(path))
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and contains in msg
    assert isinstance(err.value, AudioInputError) and err.value.exit_code == 2
    return msg


def test_bad_inputs_are_one_line_user_errors(media: dict[str, Path], tmp_path: Path) -> None:
    _one_line_error(tmp_path / "missing.wav", contains="not found")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    _one_line_error(corrupt, contains="cannot be decoded")
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio at all\n" * 20)
    _one_line_error(text, contains="cannot be decoded")
    png = tmp_path / "image.png"
    run("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", str(png))
    _one_line_error(png, contains="is an image")
    _one_line_error(media["silent_video.mp4"], contains="video without an audio track")
    _one_line_error(tmp_path, contains="is not a file")


def test_truncated_file_decodes_what_is_there(media: dict[str, Path], tmp_path: Path) -> None:
    data = media["mp3"].read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    x = decode_audio(cut)
    assert 0.3 * len(decode_audio(media["mp3"])) < len(x) < 0.7 * len(decode_audio(media["mp3"]))


@pytest.mark.slow
def test_an_hour_long_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    minute = tmp_path / "minute.wav"
    run("sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(minute), "synth", "60", "sine", "300")
    hour = tmp_path / "hour.wav"
    run("sox", str(minute), str(hour), "repeat", "59")
    assert hour.stat().st_size > 100_000_000
    proc = psutil.Process()
    tracemalloc.start()
    try:
        total = 0
        rss_early = 0
        for i, block in enumerate(iter_audio_blocks(hour, block_s=0.5)):
            total += len(block)
            if i == 600:  # after 5 minutes
                rss_early = proc.memory_info().rss
                tracemalloc.reset_peak()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 3600 * 16000
    assert peak < 5_000_000, f"Python allocations peaked at {peak / 1e6:.1f} MB"
    assert proc.memory_info().rss - rss_early < 30_000_000, "resident memory grows with the file"
