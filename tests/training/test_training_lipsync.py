"""Training the lip-sync U-Net end to end on a tiny talking video: checkpoint, preview, resume, export,
and the command line's one-line errors. (The few-minute training figure is in scripts/bench_neural.py.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.core.config import AppConfig
from tests.support.media import ffmpeg

torch = pytest.importorskip("torch", reason="torch (requirements-train.txt) is needed for training")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def talking_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to make speech (Debian packages)")
    d = tmp_path_factory.mktemp("train_video")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(d / "s.wav"), "Say papa to mama."], check=True, capture_output=True)
    subprocess.run(["sox", str(d / "s.wav"), "-r", "16000", "-c", "1", "-b", "16", str(d / "s16.wav")], check=True, capture_output=True)
    with wave.open(str(d / "s16.wav")) as wf:
        audio = np.frombuffer(wf.readframes(wf.getnframes()), np.int16).astype(np.float32) / 32768.0
    from src.bench import neural as bench
    video = d / "talking.mp4"
    bench.make_talking_video(video, ROOT / "assets" / "portrait.png", audio, 25.0, size=256)
    return video


def test_train_checkpoint_preview_resume_export(tmp_path: Path, talking_video: Path) -> None:
    from src.training.lipsync_unet.checkpoint import load_checkpoint
    from src.training.lipsync_unet.export import export_unet
    from src.training.lipsync_unet.training import train_lipsync

    cfg = AppConfig()
    cfg.cache.dir = str(tmp_path / "cache")
    out = tmp_path / "run"
    r1 = train_lipsync(talking_video, out, cfg, size=160, epochs=1, batch_size=8, width=8, progress=False)
    assert r1.epochs_done == 1 and len(r1.losses) == 1 and np.isfinite(r1.losses[0]) and r1.frames > 20
    ck = load_checkpoint(r1.checkpoint)
    assert ck["epoch"] == 1 and ck["unet"]["width"] == 8 and "optimizer" in ck
    assert ck["probe"]["weight"].shape == (1, 64)  # the training-only mouth-opening probe, kept for resuming
    preview = cv2.imread(str(r1.previews[0]))
    assert preview.shape[1] == 3 * 160 and preview.shape[0] % 160 == 0  # masked | prediction | target per row
    before = {k: v.clone() for k, v in ck["model"].items()}
    r2 = train_lipsync(talking_video, out, cfg, size=160, epochs=2, batch_size=8, width=8, progress=False)
    assert r2.epochs_done == 2 and len(r2.losses) == 1  # resumed: only epoch 2 ran
    after = load_checkpoint(r2.checkpoint)["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    res = export_unet(tmp_path / "trained.onnx", r2.checkpoint)
    assert res["max_abs_diff"] <= 1e-4 and res["width"] == 8


def test_training_improves_the_loss(tmp_path: Path, talking_video: Path) -> None:
    from src.training.lipsync_unet.training import train_lipsync

    cfg = AppConfig()
    cfg.cache.dir = str(tmp_path / "cache")
    r = train_lipsync(talking_video, tmp_path / "run", cfg, size=160, epochs=3, batch_size=8, width=8, lr=3e-3, progress=False)
    assert r.losses[-1] < r.losses[0]


def test_time_limit_stops_mid_epoch_and_resume_redoes_it(tmp_path: Path, talking_video: Path) -> None:
    from src.training.lipsync_unet.checkpoint import load_checkpoint
    from src.training.lipsync_unet.training import train_lipsync

    cfg = AppConfig()
    cfg.cache.dir = str(tmp_path / "cache")
    r = train_lipsync(talking_video, tmp_path / "run", cfg, size=160, epochs=5, width=8, max_minutes=1e-6, progress=False)
    assert r.epochs_done == 0 and r.steps == 0 and load_checkpoint(r.checkpoint)["epoch"] == 0
    r2 = train_lipsync(talking_video, tmp_path / "run", cfg, size=160, epochs=1, width=8, progress=False)
    assert r2.epochs_done == 1 and r2.steps > 0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train_lipsync.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)  # fmt: skip


def test_cli_video_without_audio_one_line_exit_2(tmp_path: Path, talking_video: Path) -> None:
    silent = tmp_path / "silent.mp4"
    ffmpeg("-i", str(talking_video), "-an", "-c:v", "copy", str(silent))
    run = run_cli("--video", str(silent), "--out", str(tmp_path / "o"), "--set", f"cache.dir={tmp_path / 'c'}")
    assert run.returncode == 2
    lines = [ln for ln in run.stderr.splitlines() if ln.strip() and not ln.startswith(("W0000", "I0000", "WARNING"))]
    assert len(lines) == 1 and "no audio track" in lines[0] and str(silent) in lines[0]


def test_cli_refuses_a_checkpoint_with_code(tmp_path: Path, talking_video: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    torch.save({"unet": {"size": 160}, "model": {}, "x": Evil()}, out / "last.pt")
    run = run_cli("--video", str(talking_video), "--out", str(out), "--epochs", "1", "--set", f"cache.dir={tmp_path / 'c'}")
    assert run.returncode == 2 and "contains pickled code" in run.stderr and "pwned" not in run.stdout


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_mel_augmentation_varies_level_and_bands_within_range() -> None:
    from src.training.lipsync_unet.training import augment_mels

    rng = np.random.default_rng(1)
    mel = np.clip(rng.normal(-1.0, 1.5, size=(64, 1, 80, 16)), -4, 4).astype(np.float32)
    aug = augment_mels(mel, rng)
    assert aug.shape == mel.shape and aug.dtype == np.float32
    assert aug.min() >= -4.0 and aug.max() <= 4.0
    shift = (aug - mel).mean(axis=(1, 2, 3))
    assert shift.std() > 0.2  # each window gets its own level
    flat_bands = sum(int((aug[k, 0].std(axis=1) < 0.1).sum() > 0) for k in range(64))  # a masked band is flat but for noise
    assert 16 <= flat_bands <= 48


def test_network_input_hides_everything_below_the_nostrils_edge_to_edge() -> None:
    """No jaw line, chin or cheek outline may reach the network: it would read the mouth opening there."""
    from src.animation.lipsync_unet.geometry import BORDER, MOUTH_RECT, network_input, paste_mask

    rng = np.random.default_rng(0)
    inner = rng.integers(1, 256, size=(160, 160, 3), dtype=np.uint8)
    x = network_input(inner, inner)
    y0 = int(round(MOUTH_RECT[1] * 160))
    assert np.all(x[3:, y0:, :] == 0)  # masked half: every column, down to the bottom edge
    assert np.all(x[3:, :y0, :] > 0) and np.all(x[:3] > 0)  # the nose strip and the reference stay
    m = paste_mask(168, 6)
    row = m[BORDER + 100]
    assert row[84] == 1.0 and row[BORDER] < 0.5 and row[-1 - BORDER] < 0.5  # the side strips stay mostly the template's


def test_probe_loss_trains_the_audio_path_only() -> None:
    """The auxiliary mouth-opening loss reaches the audio encoder through the tap, and nothing of the image path."""
    from src.training.lipsync_unet.model import UNetConfig, build_model, example_inputs
    from src.training.lipsync_unet.training import AudioTap, standardised

    cfg = UNetConfig(size=160, width=8)
    model = build_model(cfg)
    tap = AudioTap(model)
    probe = torch.nn.Linear(cfg.audio_dim, 1)
    image, audio = example_inputs(cfg, batch=4)
    model(image, audio)
    assert tap.value is not None and tap.value.shape == (4, cfg.audio_dim)
    target = torch.from_numpy(standardised(np.array([0.1, 0.5, 0.2, 0.9])))[:, None]
    torch.nn.functional.mse_loss(probe(tap.value), target).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.audio.parameters())
    assert all(p.grad is None for p in model.stem.parameters())
    tap.close()
    tap.value = None
    model(image, audio)
    assert tap.value is None  # closed: the hook is gone


def test_masked_input_comes_from_a_neighbour_4_to_12_frames_away() -> None:
    from src.training.lipsync_unet.training import NEIGHBOUR, neighbours

    rng = np.random.default_rng(3)
    idx = np.repeat(np.arange(100), 20)
    j = neighbours(idx, 100, rng)
    gap = np.abs(j - idx)
    assert j.min() >= 0 and j.max() <= 99
    assert gap.min() == NEIGHBOUR[0] and gap.max() == NEIGHBOUR[1]
    assert (j[idx == 0] > 0).all() and (j[idx == 99] < 99).all()  # mirrored at the ends
    assert (j[idx == 50] < 50).any() and (j[idx == 50] > 50).any()  # both sides
    assert np.array_equal(neighbours(np.arange(3), 3, rng), np.arange(3))  # too short: the frame itself


def test_training_figure_renders_with_the_chosen_file_lip_sync(tmp_path: Path) -> None:
    """`train-figure --lipsync-method`: the talking video comes from `main.py render` with that method."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to make speech (Debian packages)")
    from src.bench import neural as bench
    audio = bench._espeak("Open wide, then shush.", tmp_path / "s.wav")
    openings = {}
    for method in ("phones", "live"):
        video = tmp_path / method / "talking.mp4"
        video.parent.mkdir()
        renderer, _ = bench.render_talking_video(video, audio, 25.0, lipsync_method=method)
        assert renderer == f"main.py render (meshwarp, audio.visemes.method={method})"
        openings[method] = bench.mouth_openings(bench._read_frames(video))
    a, b = openings["phones"], openings["live"]
    assert len(a) == len(b) and np.nanmax(a) > np.nanmin(a) and np.nanmax(b) > np.nanmin(b)  # both talk
    assert not np.allclose(a, b, equal_nan=True)  # differently: the method reached the renderer
