"""Lip-sync U-Net at run time: template preparation (and its bad inputs), the ONNX animator on a U-Net
exported here with random weights (silence = template frames, speech = network, lossless outside the
mask, batching order), export parity for both sizes, checkpoints that carry code."""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.animation.base import ANIMATORS, AnimationInput
from src.animation.lipsync_unet import AvatarTemplate, LipsyncUNetAnimator, TemplateError, mel_windows, prepare_template
from src.animation.lipsync_unet.geometry import BORDER, paste_mask
from src.animation.liveportrait.crop import fit_square
from src.core.config import AppConfig
from src.core.errors import ModelError, UserError
from src.core.frames import MotionState
from tests.support.media import ffmpeg, write_video

torch = pytest.importorskip("torch", reason="torch (requirements-train.txt) is needed to export the test U-Net")

ROOT = Path(__file__).resolve().parents[2]
FPS = 25.0


def bench_module():
    from src.bench import neural as mod
    return mod


def espeak(text: str, path: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to make speech (Debian packages)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True, capture_output=True)
    out = path.with_suffix(".16k.wav")
    subprocess.run(["sox", str(path), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    with wave.open(str(out)) as wf:
        return np.frombuffer(wf.readframes(wf.getnframes()), np.int16).astype(np.float32) / 32768.0


@pytest.fixture(scope="session")
def talking_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 2 s of the portrait saying a sentence (stand-in renderer from scripts/bench_neural.py), with sound."""
    d = tmp_path_factory.mktemp("talking")
    audio = espeak("Hello there, open wide and say papa.", d / "s.wav")
    video = d / "talking.mp4"
    bench_module().make_talking_video(video, ROOT / "assets" / "portrait.png", audio, FPS, size=256)
    return video


@pytest.fixture(scope="session")
def unet160(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from src.training.lipsync_unet.export import export_unet

    out = tmp_path_factory.mktemp("unet") / "unet160.onnx"
    res = export_unet(out, None, size=160)
    assert res["max_abs_diff"] <= 1e-4
    return out


_make_config: Callable[..., AppConfig] | None = None


@pytest.fixture(autouse=True)
def _conftest_config(make_config: Callable[..., AppConfig]) -> None:
    global _make_config
    _make_config = make_config


def config(tmp_path: Path, onnx_path: Path | None = None, **kw: object) -> AppConfig:
    """conftest's make_config at the configured size, with this test's own avatar cache (the cache is under test)."""
    assert _make_config is not None
    cfg = _make_config(f"cache.dir={tmp_path / 'cache'}", size=512)
    cfg.animation.onnx.provider = "cpu"
    cfg.animation.onnx.warmup_runs = 1
    cfg.animation.lipsync_unet.onnx_path = str(onnx_path) if onnx_path else None
    for k, v in kw.items():
        setattr(cfg.animation.lipsync_unet, k, v)
    return cfg


# -- template --------------------------------------------------------------------------------------


def test_prepare_template_and_cache(tmp_path: Path, talking_video: Path) -> None:
    cfg = config(tmp_path)
    path = prepare_template(talking_video, cfg)
    tpl = AvatarTemplate.load(path)
    assert len(tpl) >= 45 and tpl.skipped == 0 and tpl.fps == pytest.approx(FPS)
    assert tpl.mels.shape == (len(tpl), 1, 80, 16)
    x0, y0, x1, y1 = tpl.boxes[0]
    assert x1 - x0 == pytest.approx(y1 - y0) and 20 < x1 - x0 < 256
    assert tpl.frame(3).shape == (256, 256, 3)
    # References are closed-mouth frames (the lowest fifth of openings), the nearest one in time.
    assert tpl.mouth_open[tpl.closed].max() <= np.quantile(tpl.mouth_open, 0.2) + 1e-6
    assert set(tpl.reference_index.tolist()) <= set(tpl.closed.tolist())
    i = len(tpl) // 2
    assert abs(int(tpl.reference_index[i]) - i) == np.abs(tpl.closed - i).min()
    mtime = (path / "template.npz").stat().st_mtime_ns
    assert prepare_template(talking_video, cfg) == path and (path / "template.npz").stat().st_mtime_ns == mtime
    assert [tpl.pingpong(k) for k in range(2 * len(tpl))][len(tpl) - 2 : len(tpl) + 1] == [len(tpl) - 2, len(tpl) - 1, len(tpl) - 2]


def test_video_without_audio_is_one_line_user_error(tmp_path: Path, talking_video: Path) -> None:
    silent = tmp_path / "silent.mp4"
    ffmpeg("-i", str(talking_video), "-an", "-c:v", "copy", str(silent))
    with pytest.raises(TemplateError) as e:
        prepare_template(silent, config(tmp_path))
    assert isinstance(e.value, UserError) and "no audio track" in str(e.value) and "\n" not in str(e.value)


def _with_blanks(tmp_path: Path, talking_video: Path, n_blank: int) -> Path:
    import av

    with av.open(str(talking_video)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    for i in range(0, n_blank):
        frames[i * (len(frames) // n_blank)] = np.full_like(frames[0], 127)
    mute = write_video(tmp_path / f"v{n_blank}.mp4", frames, fps=FPS)
    out = tmp_path / f"blank{n_blank}.mp4"
    ffmpeg("-i", str(mute), "-i", str(talking_video), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out))
    return out


def test_faceless_frames_skipped_and_counted_but_over_20_percent_refused(tmp_path: Path, talking_video: Path) -> None:
    n = len(AvatarTemplate.load(prepare_template(talking_video, config(tmp_path))))
    few = _with_blanks(tmp_path, talking_video, 4)
    tpl = AvatarTemplate.load(prepare_template(few, config(tmp_path)))
    assert tpl.skipped == 4 and len(tpl) == n - 4
    many = _with_blanks(tmp_path, talking_video, int(n * 0.3))
    with pytest.raises(TemplateError, match=r"no face found in \d+ of \d+ frames"):
        prepare_template(many, config(tmp_path))


# -- animator --------------------------------------------------------------------------------------


def test_registered_and_needs_an_onnx_file(tmp_path: Path) -> None:
    assert ANIMATORS.get("lipsync-unet") is LipsyncUNetAnimator
    with pytest.raises(ModelError, match="onnx_path: not set"):
        LipsyncUNetAnimator(config(tmp_path)).load_model()
    cfg = config(tmp_path, checkpoint="x.pt")
    with pytest.raises(ModelError, match="export it with scripts/export_onnx.py"):
        LipsyncUNetAnimator(cfg).load_model()


def test_wrong_size_model_names_the_tensor(tmp_path: Path, unet160: Path) -> None:
    with pytest.raises(ModelError) as e:
        LipsyncUNetAnimator(config(tmp_path, unet160, size=320)).load_model()
    assert "input 'image'" in str(e.value) and "[B,6,320,320]" in str(e.value) and "[B,6,160,160]" in str(e.value)


def test_still_portrait_without_template_is_user_error(tmp_path: Path, unet160: Path) -> None:
    anim = LipsyncUNetAnimator(config(tmp_path, unet160))
    anim.load_model()
    with pytest.raises(TemplateError, match="prepare --video"):
        anim.preprocess_source_image(ROOT / "assets" / "portrait.png")


def test_silence_shows_template_speech_changes_only_the_mask(tmp_path: Path, unet160: Path, talking_video: Path) -> None:
    cfg = config(tmp_path, unet160)
    cfg.animation.lipsync_unet.close_mouth_in_silence = False  # (with it, see the test below)
    anim = LipsyncUNetAnimator(cfg)
    anim.load_model()
    anim.preprocess_source_image(talking_video)
    tpl = anim.template
    silent = np.full((1, 80, 16), -4.0, np.float32)
    loud = mel_windows(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), FPS, 5)
    inputs = [AnimationInput(MotionState(), 0.0, k, audio_features=f) for k, f in
              enumerate([None, silent, loud[2], loud[3], None])]  # fmt: skip
    out = anim.animate_batch(inputs)
    assert anim.frames_synthesised == 2 and anim.frames_template == 3
    for k in (0, 1, 4):
        assert np.array_equal(out[k], fit_square(tpl.frame(tpl.pingpong(k)), 512))
    # Speech: the network's mouth, pasted through the feathered mask; outside it the template is untouched.
    cfg2 = config(tmp_path, unet160)
    cfg2.animation.output_size_px = 256  # = the template's frame size, so frame pixels map 1:1
    anim2 = LipsyncUNetAnimator(cfg2)
    anim2.load_model()
    anim2.preprocess_source_image(talking_video)
    frame_out = anim2.animate(AnimationInput(MotionState(), 0.0, 2, audio_features=loud[2]))
    base = tpl.frame(2)
    box = tpl.boxes[2]
    k = (box[2] - box[0]) / 168
    m = np.array([[k, 0, box[0]], [0, k, box[1]]], np.float32)
    alpha = cv2.warpAffine(paste_mask(168, cfg.animation.lipsync_unet.feather_px), m, (256, 256), borderValue=0.0)
    changed = np.any(frame_out != base, axis=2)
    assert changed.sum() > 100
    assert not changed[alpha == 0].any()
    # The mask covers the mouth region below the nose bridge: changes start below the box top.
    ys = np.nonzero(changed)[0]
    assert ys.min() > box[1] + BORDER


def test_batch_equals_single_frames_in_order(tmp_path: Path, unet160: Path, talking_video: Path) -> None:
    anim = LipsyncUNetAnimator(config(tmp_path, unet160))
    anim.load_model()
    anim.preprocess_source_image(talking_video)
    audio = np.random.default_rng(1).normal(0, 0.1, 16000).astype(np.float32)
    feats = mel_windows(audio, FPS, 6)
    inputs = [AnimationInput(MotionState(), 0.0, k, audio_features=feats[k]) for k in range(6)]
    batch = anim.animate_batch(inputs)
    single = [anim.animate(i) for i in inputs]
    for b, s in zip(batch, single, strict=True):
        assert np.abs(b.astype(int) - s.astype(int)).max() <= 1  # same network, same inputs (batched GEMMs may round differently)
    assert not np.array_equal(batch[0], batch[3])


def test_external_audio_encoder_shapes_checked(tmp_path: Path, talking_video: Path) -> None:
    """A user-supplied mel -> feature encoder feeds a U-Net built for features."""
    from src.training.lipsync_unet.export import parity, random_model, to_onnx_bytes

    unet = random_model(160, audio_feature_dim=32)
    data = to_onnx_bytes(unet)
    assert parity(unet, data) <= 1e-4
    (tmp_path / "unet_feat.onnx").write_bytes(data)
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(80 * 16, 32))
    torch.onnx.export(enc, (torch.zeros(1, 1, 80, 16),), str(tmp_path / "enc.onnx"), input_names=["mel"], output_names=["feature"],
                      dynamic_axes={"mel": {0: "B"}, "feature": {0: "B"}}, dynamo=False)  # fmt: skip
    cfg = config(tmp_path, tmp_path / "unet_feat.onnx", audio_encoder_onnx=str(tmp_path / "enc.onnx"))
    anim = LipsyncUNetAnimator(cfg)
    anim.load_model()
    anim.preprocess_source_image(talking_video)
    loud = mel_windows(np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), FPS, 3)
    assert anim.animate(AnimationInput(MotionState(), 0.0, 1, audio_features=loud[1])).shape == (512, 512, 3)
    # An encoder whose output does not match the U-Net's audio input is refused, naming the tensor.
    enc16 = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(80 * 16, 16))
    torch.onnx.export(enc16, (torch.zeros(1, 1, 80, 16),), str(tmp_path / "enc16.onnx"), input_names=["mel"], output_names=["feature"],
                      dynamic_axes={"mel": {0: "B"}, "feature": {0: "B"}}, dynamo=False)  # fmt: skip
    cfg.animation.lipsync_unet.audio_encoder_onnx = str(tmp_path / "enc16.onnx")
    with pytest.raises(ModelError, match="input 'audio' expected shape"):
        LipsyncUNetAnimator(cfg).load_model()


# -- export and checkpoints --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [160, 320])
def test_export_parity_and_dynamic_batch(tmp_path: Path, size: int) -> None:
    import onnxruntime as ort

    from src.training.lipsync_unet.export import export_unet, random_model
    from src.training.lipsync_unet.model import example_inputs

    res = export_unet(tmp_path / f"u{size}.onnx", None, size=size)
    assert res["max_abs_diff"] <= 1e-4
    sess = ort.InferenceSession(res["path"], providers=["CPUExecutionProvider"])
    model = random_model(size)
    image, audio = example_inputs(model.cfg, 3)
    got = sess.run(["out"], {"image": image.numpy(), "audio": audio.numpy()})[0]
    with torch.no_grad():
        ref = model(image, audio).numpy()
    assert got.shape == (3, 3, size, size)
    assert np.abs(got - ref).max() <= 1e-4


class Payload:
    """Unpickling this runs code (a stand-in for a malicious checkpoint)."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_with_code_is_refused(tmp_path: Path) -> None:
    from src.training.lipsync_unet.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from src.training.lipsync_unet.export import random_model

    good = tmp_path / "good.pt"
    save_checkpoint(good, random_model(160), {"epoch": 3})
    model, ckpt = model_from_checkpoint(good)
    assert ckpt["epoch"] == 3 and model.cfg.size == 160
    bad = tmp_path / "bad.pt"
    torch.save({"unet": {"size": 160}, "model": {}, "extra": Payload()}, bad)
    with pytest.raises(ModelError) as e:
        load_checkpoint(bad)
    assert "contains pickled code" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


@pytest.mark.parametrize("close", [True, False])
def test_silent_frames_with_the_template_mouth_open_are_closed_by_the_network(
    tmp_path: Path, unet160: Path, talking_video: Path, close: bool
) -> None:
    cfg = config(tmp_path, unet160)
    cfg.animation.lipsync_unet.close_mouth_in_silence = close
    anim = LipsyncUNetAnimator(cfg)
    anim.load_model()
    anim.preprocess_source_image(talking_video)
    tpl = anim.template
    open_idx = np.flatnonzero(tpl.open_mouth)
    shut_idx = np.flatnonzero(~tpl.open_mouth)
    assert len(open_idx) and len(shut_idx)  # the talking video opens and closes its mouth
    silent = np.full((1, 80, 16), -4.0, np.float32)
    ks = [int(open_idx[0]), int(shut_idx[0])]
    out = anim.animate_batch([AnimationInput(MotionState(), 0.0, k, audio_features=silent) for k in ks])
    assert np.array_equal(out[1], fit_square(tpl.frame(ks[1]), 512))  # a closed template frame is shown as is
    assert np.array_equal(out[0], fit_square(tpl.frame(ks[0]), 512)) is not close
    assert anim.frames_closed == (1 if close else 0)
