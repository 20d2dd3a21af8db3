"""The command line with bad inputs (exit 2, one line naming the input and the fix, never a traceback) and good ones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from src.animation import prepare_avatar

# case -> (command and arguments, words the error line must contain); paths are filled in by the fixture.
BAD_INPUTS: dict[str, tuple[list[str], list[str]]] = {
    "missing_source": (["render", "--source", "{missing}/me.png", "--output", "{out}"], ["source image", "not found"]),
    "unreadable_source": (["render", "--source", "{text_png}", "--output", "{out}"], ["source image", "cannot be read"]),
    "no_face_source": (["render", "--source", "{noface_png}", "--output", "{out}"], ["no face", "frontal"]),
    "blank_source": (["render", "--source", "{blank_png}", "--output", "{out}"], ["no face", "frontal"]),
    "face_index_out_of_range": (["render", "--source", "{two_faces}", "--face-index", "2", "--output", "{out}"],
                                ["--face-index 2", "2 face(s)", "0..1"]),
    "negative_face_index": (["render", "--face-index", "-1", "--output", "{out}"], ["--face-index -1"]),
    "missing_driver": (["render", "--driver", "{missing}/clip.mp4", "--output", "{out}"], ["driver video", "not found"]),
    "truncated_driver": (["render", "--driver", "{truncated}", "--output", "{out}"], ["driver video", "{truncated}"]),
    "garbage_driver": (["render", "--driver", "{garbage}", "--output", "{out}"], ["driver video", "{garbage}"]),
    "missing_webcam": (["run", "--driver", "webcam:7", "--output", "null", "--duration", "1"], ["webcam 7", "camera"]),
    "unknown_config_key": (["render", "--set", "pipeline.fsp=3", "--output", "{out}"], ["pipeline.fsp", "fps"]),
    "bad_config_value": (["render", "--set", "pipeline.fps=-1", "--output", "{out}"], ["pipeline.fps", "greater than 0"]),
    "bad_config_choice": (["run", "--set", "animation.motion_mode=upside", "--output", "null"],
                          ["animation.motion_mode", "relative"]),
    "missing_config_file": (["run", "--config", "{missing}/c.yaml", "--output", "null"], ["config file", "not found"]),
    "output_under_a_file": (["render", "--duration", "0.2", "--output", "{text_png}/x.mp4"], ["{text_png}/x.mp4"]),
    "output_not_a_video": (["render", "--duration", "0.2", "--output", "{tmp}/out.txt"], [".mp4"]),
    "unknown_animator": (["render", "--animator", "dreamer", "--output", "{out}"], ["dreamer", "meshwarp"]),
    "unknown_output": (["run", "--output", "teleport", "--duration", "1"], ["teleport", "file", "null", "window"]),
    "bad_duration": (["run", "--output", "null", "--duration", "-3"], ["--duration", "positive"]),
}

@pytest.fixture(scope="module")
def bad_input_runs(run_cli, tmp_path_factory, text_as_png, noface_image, blank_image, two_faces_image, corrupt_videos):
    """Every bad-input command, run once (three at a time): case -> (CompletedProcess, expected words)."""
    tmp = tmp_path_factory.mktemp("cli_bad")
    subs = {"missing": str(tmp / "does_not_exist"), "out": str(tmp / "out.mp4"), "tmp": str(tmp),
            "text_png": str(text_as_png), "noface_png": str(noface_image), "blank_png": str(blank_image),
            "two_faces": str(two_faces_image), "truncated": str(corrupt_videos["truncated"]),
            "garbage": str(corrupt_videos["garbage"])}

    def one(case: str):
        args, words = BAD_INPUTS[case]
        args = [a.format(**subs) for a in args]
        env = {"DISPLAY": ""} if args[0] == "run" else None
        return case, run_cli(*args, env=env), [w.format(**subs) for w in words]

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(one, BAD_INPUTS))
    return {case: (proc, words) for case, proc, words in results}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_user_error(bad_input_runs, case: str) -> None:
    proc, words = bad_input_runs[case]
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == errors[0]  # the error is the last word
    for w in words:
        assert w in errors[0], f"{w!r} not in {errors[0]!r}"
    assert proc.stdout == ""


# Cases whose error line is still preceded by library chatter on stderr.


@pytest.mark.parametrize(
    "case",
    BAD_INPUTS,
)
def test_bad_input_stderr_is_exactly_one_line(bad_input_runs, case: str) -> None:
    proc, _ = bad_input_runs[case]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # no library chatter (libpng, OpenCV, FFmpeg, MediaPipe) before the error


def test_uncreatable_output_path_is_a_user_error(run_cli) -> None:
    r = run_cli("render", "--duration", "0.2", "--output", "/proc/puppetcam_test.mp4")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr


def test_odd_output_size_is_refused_with_the_setting_to_fix(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    r = run_cli("render", "--duration", "0.2", "--output", str(out), size=257)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "animation.output_size_px" in lines[0] and "257" in lines[0] and "even" in lines[0], r.stderr
    assert not (out.is_file() and out.stat().st_size > 0), "no video is written"


def test_devices_lists_animators_outputs_and_providers(run_cli) -> None:
    r = run_cli("devices")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "cameras:" in out
    animators = next(ln for ln in out.splitlines() if ln.startswith("animators:"))
    outputs = next(ln for ln in out.splitlines() if ln.startswith("outputs:"))
    providers = next(ln for ln in out.splitlines() if ln.startswith("onnxruntime providers:"))
    assert "meshwarp" in animators
    for name in ("file", "null", "window"):
        assert name in outputs
    assert "CPUExecutionProvider" in providers


def _first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="bgr24")


def test_several_faces_takes_the_largest_warns_and_face_index_picks_another(run_cli, make_config, two_faces_image: Path,
                                                                            tmp_path: Path) -> None:
    cfg = make_config()
    avatars = [prepare_avatar(two_faces_image, cfg, face_index=k, use_cache=False) for k in (0, 1)]
    assert avatars[0].faces_found == 2
    assert avatars[0].crop[0] < 300 / 2 < avatars[1].crop[0] + avatars[1].crop[2] / 2  # left face, then right face
    for k in (0, 1):
        out = tmp_path / f"face{k}.mp4"
        args = ["render", "--source", str(two_faces_image), "--duration", "0.2", "--output", str(out), "--set", "idle.seed=1"]
        if k:
            args += ["--face-index", str(k)]
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        assert "2 faces found" in r.stderr
        frame = _first_frame(out).astype(np.float64)
        errs = [np.mean((frame - a.image.astype(np.float64)) ** 2) for a in avatars]
        assert int(np.argmin(errs)) == k, errs


def test_run_for_a_duration_with_a_driver_exits_0(run_cli, face_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    r = run_cli("run", "--driver", str(face_video), "--loop", "--output", f"file:{out}", "--output", "null",
                "--duration", "1.5")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) > 5


def test_run_without_output_or_display_says_what_to_use(run_cli) -> None:
    r = run_cli("run", "--duration", "1", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("error:") and "--output file:" in err


def test_prepare_then_default_render(run_cli, tmp_path: Path) -> None:
    r = run_cli("prepare")
    assert r.returncode == 0, r.stderr
    assert "prepared" in r.stdout and "portrait.png" in r.stdout
    out = tmp_path / "default.mp4"
    r = run_cli("render", "--duration", "0.5", "--output", str(out))
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 15
