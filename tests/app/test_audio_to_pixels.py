"""Audio -> mouth -> pixels, end to end through the command line: speech rendered (`render --audio`) and
streamed live (`run --audio ... --output file:`) into an mp4 whose frames MediaPipe re-detects. The mouth
opens in every stretch of speech of the file's own audio track and rests in the silences. Idle motion is
seeded, so the renders differ only by the audio. The negative control: the same check fails on the same
render with no audio (what a pipeline with the mouth weight switched off writes)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from src.bench.audio import PHRASES, make_speech_with_pauses
from tests.support.mouth_video import check_mouth_follows_speech, mouth_openings, speech_regions
from tests.support.speech import needs_espeak

pytestmark = needs_espeak
SEED = ["--set", "idle.seed=3"]
RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two phrases: 1 s of silence, speech, 1.2 s of silence, speech, 1.2 s of silence (16 kHz wav)."""
    d = tmp_path_factory.mktemp("speech")
    path, _, _ = make_speech_with_pauses(d, PHRASES[:2], gap_s=1.2, lead_s=1.0)
    return path


@pytest.fixture(scope="module")
def idle_render(tmp_path_factory: pytest.TempPathFactory, run_cli: RunCli, portrait_path: Path,
                speech: Path) -> tuple[np.ndarray, np.ndarray]:
    """The same seeded render with no audio: the mouth never driven. Its median opening is the rest."""
    out = tmp_path_factory.mktemp("idle") / "idle.mp4"
    duration = len(speech_samples(speech)) / 16000
    r = run_cli("render", *SEED, "--source", str(portrait_path), "--duration", f"{duration:.2f}", "--output", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    return mouth_openings(out)


def speech_samples(path: Path) -> np.ndarray:
    from src.audio import decode_audio

    return decode_audio(path)


def rest_of(idle: tuple[np.ndarray, np.ndarray]) -> float:
    return float(np.nanmedian(idle[1]))


def test_render_with_audio_opens_the_mouth_in_speech_and_rests_in_silence(
    tmp_path: Path, run_cli: RunCli, portrait_path: Path, speech: Path, idle_render: tuple[np.ndarray, np.ndarray]
) -> None:
    out = tmp_path / "talking.mp4"
    r = run_cli("render", *SEED, "--source", str(portrait_path), "--audio", str(speech), "--output", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    times, opening = mouth_openings(out)
    regions = speech_regions(speech, out)  # on the muxed audio's timeline: frames are judged against what the file plays
    assert len(regions) == 2 and abs(regions[0][0] - 1.0) < 0.05, regions  # a render starts its audio with frame 0
    print(check_mouth_follows_speech(times, opening, regions, rest_of(idle_render)))


def test_live_run_with_audio_to_a_file_opens_the_mouth_in_speech_and_rests_in_silence(
    tmp_path: Path, run_cli: RunCli, portrait_path: Path, speech: Path, idle_render: tuple[np.ndarray, np.ndarray]
) -> None:
    out = tmp_path / "live.mp4"
    duration = len(speech_samples(speech)) / 16000 + 0.5
    r = run_cli("run", *SEED, "--source", str(portrait_path), "--audio", str(speech),
                "--output", f"file:{out}", "--duration", f"{duration:.2f}")
    assert r.returncode == 0, r.stderr[-2000:]
    times, opening = mouth_openings(out)
    regions = speech_regions(speech, out)
    assert len(regions) == 2 and 0.5 < regions[0][0] < 1.5, regions  # the live file starts near the audio's start
    print(check_mouth_follows_speech(times, opening, regions, rest_of(idle_render)))


def test_the_check_fails_when_the_mouth_is_not_driven(speech: Path, idle_render: tuple[np.ndarray, np.ndarray]) -> None:
    """Negative control: the frames of a render whose mouth nothing drives, judged against the speech."""
    times, opening = idle_render
    with pytest.raises(AssertionError, match="did not open during speech"):
        check_mouth_follows_speech(times, opening, speech_regions(speech), rest_of(idle_render))
