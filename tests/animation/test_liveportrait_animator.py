"""LivePortrait animator on tiny ONNX models built here with the exact tensor names and shapes of the
standard exports: model-dir checks, source prep + cache, crop/paste-back geometry, relative and idle
motion against a reference written from the formulas, stitching, batching order."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy.spatial.transform import Rotation
from scipy.special import softmax

from src.animation.base import ANIMATORS, AnimationInput
from src.animation.liveportrait import LivePortraitAnimator
from src.animation.liveportrait.crop import crop_image, crop_matrix, fit_square, paste_back, paste_mask
from src.core.config import AppConfig
from src.core.errors import ModelError
from src.core.frames import FaceObservation, MotionState, VideoFrame

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "assets" / "portrait.png"
F32 = TensorProto.FLOAT


def _save(path: Path, nodes: list, inputs: list, outputs: list, inits: list) -> None:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _vi(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, F32, shape)


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, np.float32) if arr.dtype != np.int64 else arr, name)


def build_model_dir(d: Path, seed: int = 0, stitch_out: int = 65) -> Path:
    """Six tiny models with the standard names and shapes. The appearance 'feature' carries the crop's
    colours at 64x64 in channels 0..2 and the generator returns them at 512, moved by the keypoints."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    w = rng.normal(0, 0.01, (512, 3, 1, 1)).astype(np.float32)
    w[:3] = 0
    for c in range(3):
        w[c, c, 0, 0] = 1.0
    _save(d / "appearance_feature_extractor.onnx",
          [helper.make_node("AveragePool", ["img"], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
           helper.make_node("Conv", ["p", "w"], ["c"]),
           helper.make_node("Reshape", ["c", "shape"], ["output"])],
          [_vi("img", [1, 3, 256, 256])], [_vi("output", [1, 32, 16, 64, 64])],
          [_init("w", w), _init("shape", np.array([1, 32, 16, 64, 64], np.int64))])  # fmt: skip
    nodes = [helper.make_node("GlobalAveragePool", ["img"], ["g"]), helper.make_node("Flatten", ["g"], ["f"])]
    inits, outs = [], []
    for name, n, scale, bias in (("pitch", 66, 40.0, 0.0), ("yaw", 66, 40.0, 0.0), ("roll", 66, 40.0, 0.0), ("t", 3, 0.2, 0.0),
                                 ("exp", 63, 0.1, 0.0), ("scale", 1, 0.3, 1.0), ("kp", 63, 0.5, 0.0)):  # fmt: skip
        inits += [_init(f"{name}_w", rng.normal(0, scale, (3, n))), _init(f"{name}_b", rng.normal(0, scale * 0.2, n) + bias)]
        nodes.append(helper.make_node("Gemm", ["f", f"{name}_w", f"{name}_b"], [name]))
        outs.append(_vi(name, [1, n]))
    _save(d / "motion_extractor.onnx", nodes, [_vi("img", [1, 3, 256, 256])], outs, inits)
    _save(d / "warping_spade.onnx",
          [helper.make_node("Reshape", ["feature_3d", "s4"], ["f4"]),
           helper.make_node("Slice", ["f4", "st", "en", "ax"], ["rgb"]),
           helper.make_node("Resize", ["rgb", "", "", "sz"], ["big"], mode="linear"),
           helper.make_node("Sub", ["kp_driving", "kp_source"], ["dk"]),
           helper.make_node("ReduceMean", ["dk"], ["m"], keepdims=0),
           helper.make_node("Mul", ["m", "gain"], ["mg"]),
           helper.make_node("Add", ["big", "mg"], ["out"])],
          [_vi("feature_3d", [1, 32, 16, 64, 64]), _vi("kp_driving", [1, 21, 3]), _vi("kp_source", [1, 21, 3])],
          [_vi("out", [1, 3, 512, 512])],
          [_init("s4", np.array([1, 512, 64, 64], np.int64)), _init("st", np.array([0], np.int64)),
           _init("en", np.array([3], np.int64)), _init("ax", np.array([1], np.int64)),
           _init("sz", np.array([1, 3, 512, 512], np.int64)), _init("gain", np.array(2.0))])  # fmt: skip
    for name, n_in, n_out in (("stitching", 126, stitch_out), ("stitching_eye", 66, 63), ("stitching_lip", 65, 63)):
        inits = [_init("w", rng.normal(0, 0.01, (n_in, n_out))), _init("b", rng.normal(0, 0.002, n_out))]
        _save(d / f"{name}.onnx", [helper.make_node("Gemm", ["input", "w", "b"], ["output"])], [_vi("input", [1, n_in])],
              [_vi("output", [1, n_out])], inits)  # fmt: skip
    return d


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("lp_models"))


def make_config(tmp_path: Path, model_dir: Path, **lp: object) -> AppConfig:
    cfg = AppConfig()
    cfg.cache.dir = str(tmp_path / "cache")
    cfg.animation.onnx.provider = "cpu"
    cfg.animation.onnx.warmup_runs = 1
    cfg.animation.liveportrait.model_dir = str(model_dir)
    cfg.animation.liveportrait.smoothing = False
    for k, v in lp.items():
        setattr(cfg.animation.liveportrait, k, v)
    return cfg


def ready(cfg: AppConfig) -> LivePortraitAnimator:
    anim = LivePortraitAnimator(cfg)
    anim.load_model()
    anim.preprocess_source_image(PORTRAIT)
    return anim


def driver(image: np.ndarray, index: int) -> tuple[VideoFrame, FaceObservation]:
    from src.capture.face_tracker import FaceTracker

    with FaceTracker(static_image_mode=True, max_faces=1) as tr:
        face = tr.process(image)[0]
    return VideoFrame(image=image, capture_ts=time.monotonic(), index=index), face


def idle(index: int, rot: np.ndarray | None = None, **kw: object) -> AnimationInput:
    m = MotionState(rotation=np.eye(3, dtype=np.float32) if rot is None else rot.astype(np.float32), **kw)  # type: ignore[arg-type]
    return AnimationInput(motion=m, capture_ts=float(index), index=index)


def test_registered() -> None:
    assert ANIMATORS.get("liveportrait") is LivePortraitAnimator


def test_model_dir_missing_files_lists_them(tmp_path: Path, model_dir: Path) -> None:
    d = tmp_path / "partial"
    d.mkdir()
    for name in ("motion_extractor.onnx", "stitching.onnx"):
        (d / name).write_bytes((model_dir / name).read_bytes())
    anim = LivePortraitAnimator(make_config(tmp_path, d))
    with pytest.raises(ModelError) as e:
        anim.load_model()
    msg = str(e.value)
    assert "\n" not in msg
    for missing in ("appearance_feature_extractor.onnx", "warping_spade.onnx", "stitching_eye.onnx", "stitching_lip.onnx"):
        assert missing in msg
    assert "motion_extractor.onnx" not in msg.split("missing")[1]


def test_model_dir_not_set(tmp_path: Path) -> None:
    cfg = AppConfig()
    with pytest.raises(ModelError, match="model_dir"):
        LivePortraitAnimator(cfg).load_model()


def test_wrong_output_shape_names_file_tensor_expected_found(tmp_path: Path) -> None:
    d = build_model_dir(tmp_path / "bad", stitch_out=64)
    with pytest.raises(ModelError) as e:
        LivePortraitAnimator(make_config(tmp_path, d)).load_model()
    msg = str(e.value)
    assert "stitching.onnx" in msg and "'output'" in msg and "[B,65]" in msg and "[1,64]" in msg


def test_idle_neutral_keeps_source_keypoints_and_rotation_matches_reference(tmp_path: Path, model_dir: Path) -> None:
    anim = ready(make_config(tmp_path, model_dir, stitching=False))
    s = anim.src
    x0 = anim.driving_keypoints([idle(0)])
    np.testing.assert_allclose(x0[0], s.x_s[0], atol=1e-6)
    # Reference: rotate the source's canonical keypoints with the composed rotation (scipy), add exp, scale, t.
    delta = Rotation.from_euler("xyz", [8.0, -12.0, 5.0], degrees=True).as_matrix()
    x1 = anim.driving_keypoints([idle(1, delta)])[0]
    r_s = Rotation.from_euler("xyz", [s.info.pitch[0], s.info.yaw[0], s.info.roll[0]], degrees=True).as_matrix().T
    r_d = delta.T @ r_s
    ref = s.info.scale[0, 0] * (s.info.kp[0] @ r_d + s.info.exp[0])
    ref[:, :2] += s.info.t[0, :2]
    np.testing.assert_allclose(x1, ref, atol=1e-5)


def test_idle_eyes_and_audio_mouth_use_retargeting(tmp_path: Path, model_dir: Path) -> None:
    from src.core.frames import MouthShape

    anim = ready(make_config(tmp_path, model_dir, stitching=False))
    base = anim.driving_keypoints([idle(0)])[0]
    closed = anim.driving_keypoints([idle(1, eye_open=(0.0, 0.0))])[0]
    talking = anim.driving_keypoints([AnimationInput(motion=MotionState(), capture_ts=0.0, index=2, audio_mouth=MouthShape(open=0.3))])[0]
    assert np.abs(closed - base).max() > 1e-5
    assert np.abs(talking - base).max() > 1e-5
    # The lip delta is exactly the lip model's output difference (checked against a direct ONNX run).
    import onnxruntime as ort

    s = anim.src
    sess = ort.InferenceSession(str(model_dir / "stitching_lip.onnx"), providers=["CPUExecutionProvider"])
    lip_d = s.lip + 0.3 / s.mouth_width_iod
    f = lambda r: sess.run(None, {"input": np.concatenate([s.x_s.reshape(1, 63), [[s.lip, r]]], 1).astype(np.float32)})[0]  # noqa: E731
    np.testing.assert_allclose(talking - base, (f(lip_d) - f(s.lip)).reshape(21, 3), atol=1e-6)


def test_relative_motion_first_driver_frame_is_the_source_then_follows_formula(tmp_path: Path, model_dir: Path) -> None:
    import onnxruntime as ort

    from src.animation.liveportrait.source import to_net

    anim = ready(make_config(tmp_path, model_dir, stitching=False))
    s = anim.src
    img = fit_square(cv2.imread(str(PORTRAIT)), 384)
    frame0, face0 = driver(img, 0)
    x = anim.driving_keypoints([AnimationInput(MotionState(), 0.0, 0, driver_frame=frame0, driver_face=face0)])
    np.testing.assert_allclose(x[0], s.x_s[0], atol=1e-5)
    brighter = cv2.convertScaleAbs(img, alpha=0.7, beta=60)
    frame1 = VideoFrame(brighter, 1.0, 1)
    x1 = anim.driving_keypoints([AnimationInput(MotionState(), 1.0, 1, driver_frame=frame1, driver_face=face0)])[0]
    # Reference from the raw motion-extractor outputs on both driver crops.
    sess = ort.InferenceSession(str(model_dir / "motion_extractor.onnx"), providers=["CPUExecutionProvider"])
    m = crop_matrix(face0.landmarks, 256)
    names = [o.name for o in sess.get_outputs()]
    o0 = dict(zip(names, sess.run(None, {"img": to_net(crop_image(img, m, 256))}), strict=True))
    o1 = dict(zip(names, sess.run(None, {"img": to_net(crop_image(brighter, m, 256))}), strict=True))

    def deg(b: np.ndarray) -> float:
        return float((softmax(b[0].astype(np.float64)) * np.arange(66)).sum() * 3 - 97.5)

    def rot(o: dict) -> np.ndarray:
        return Rotation.from_euler("xyz", [deg(o["pitch"]), deg(o["yaw"]), deg(o["roll"])], degrees=True).as_matrix().T

    r_s = Rotation.from_euler("xyz", [s.info.pitch[0], s.info.yaw[0], s.info.roll[0]], degrees=True).as_matrix().T
    r_new = rot(o1) @ rot(o0).T @ r_s
    exp = s.info.exp[0] + (o1["exp"] - o0["exp"]).reshape(21, 3)
    scale = s.info.scale[0, 0] * o1["scale"][0, 0] / o0["scale"][0, 0]
    t = s.info.t[0] + (o1["t"] - o0["t"])[0]
    ref = scale * (s.info.kp[0] @ r_new + exp)
    ref[:, :2] += t[:2]
    assert np.abs(ref - s.x_s[0]).max() > 1e-3  # the brighter frame really moved something
    np.testing.assert_allclose(x1, ref, atol=1e-4)


def test_stitching_is_applied(tmp_path: Path, model_dir: Path) -> None:
    import onnxruntime as ort

    plain = ready(make_config(tmp_path, model_dir, stitching=False)).driving_keypoints([idle(0)])[0]
    anim = ready(make_config(tmp_path, model_dir, stitching=True))
    stitched = anim.driving_keypoints([idle(0)])[0]
    sess = ort.InferenceSession(str(model_dir / "stitching.onnx"), providers=["CPUExecutionProvider"])
    delta = sess.run(None, {"input": np.concatenate([anim.src.x_s.reshape(1, 63), plain.reshape(1, 63)], 1).astype(np.float32)})[0][0]
    ref = plain + delta[:63].reshape(21, 3)
    ref[:, :2] += delta[63:65]
    np.testing.assert_allclose(stitched, ref, atol=1e-6)


def test_paste_back_lossless_outside_mask_and_aligned_inside(tmp_path: Path, model_dir: Path) -> None:
    anim = ready(make_config(tmp_path, model_dir, stitching=False))
    out = anim.animate(idle(0))
    s = anim.src
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    inv = cv2.invertAffineTransform(s.crop_m.astype(np.float64))
    alpha = cv2.warpAffine(s.mask, inv, (512, 512), flags=cv2.INTER_LINEAR, borderValue=0.0)
    outside = alpha == 0
    assert outside.mean() > 0.2 and (~outside).mean() > 0.1
    assert np.array_equal(out[outside], s.canvas[outside])
    # Inside, the generator returned the crop's own colours (at 64x64): a correct paste-back lands
    # them where they came from; a wrong geometry (e.g. transposed) would differ a lot.
    core = alpha > 0.99
    err = np.abs(out[core].astype(float) - s.canvas[core].astype(float)).mean()
    wrong = paste_back(s.canvas, cv2.transpose(crop_image(s.canvas, s.crop_m, 512)), s.crop_m, s.mask)
    err_wrong = np.abs(wrong[core].astype(float) - s.canvas[core].astype(float)).mean()
    assert err < 12 and err_wrong > 2 * err


def test_crop_and_paste_roundtrip_geometry() -> None:
    canvas = fit_square(cv2.imread(str(PORTRAIT)), 512)
    from src.capture.face_tracker import FaceTracker

    with FaceTracker(static_image_mode=True, max_faces=1) as tr:
        lm = tr.process(canvas)[0].landmarks
    m = crop_matrix(lm, 512)
    crop = crop_image(canvas, m, 512)
    mask = paste_mask(512)
    back = paste_back(canvas, crop, m, mask)
    inv = cv2.invertAffineTransform(m.astype(np.float64))
    alpha = cv2.warpAffine(mask, inv, (512, 512), borderValue=0.0)
    assert np.array_equal(back[alpha == 0], canvas[alpha == 0])
    assert np.abs(back.astype(int) - canvas.astype(int))[alpha > 0].mean() < 4  # resampling only
    # The eyes' centre maps inside the crop's upper half, the lips' below it (LivePortrait's framing).
    eyes = np.array([*lm[[33, 263], :2].mean(axis=0), 1.0])
    lips = np.array([*lm[[13, 14], :2].mean(axis=0), 1.0])
    ey, ly = (m @ eyes)[1], (m @ lips)[1]
    assert 150 < ey < ly < 400


def test_source_cache_reused_and_corrupt_cache_rebuilt(tmp_path: Path, model_dir: Path) -> None:
    cfg = make_config(tmp_path, model_dir)
    a = ready(cfg)
    assert not a.source_from_cache
    b = ready(cfg)
    assert b.source_from_cache
    np.testing.assert_array_equal(a.src.x_s, b.src.x_s)
    cache = next((tmp_path / "cache" / "liveportrait").glob("*.npz"))
    cache.write_bytes(cache.read_bytes()[:1000])
    c = ready(cfg)
    assert not c.source_from_cache
    np.testing.assert_allclose(c.src.x_s, a.src.x_s, atol=1e-6)


def test_batch_matches_single_frames_in_order(tmp_path: Path, model_dir: Path) -> None:
    anim = ready(make_config(tmp_path, model_dir))
    rots = [Rotation.from_euler("xyz", [0, yaw, 0], degrees=True).as_matrix() for yaw in (-15, 0, 10, 20)]
    inputs = [idle(i, r) for i, r in enumerate(rots)]
    batch = anim.animate_batch(inputs)
    singles = [anim.animate(inp) for inp in inputs]
    assert len(batch) == 4
    for b, s in zip(batch, singles, strict=True):
        assert np.array_equal(b, s)
    assert not np.array_equal(batch[0], batch[3])


def test_driver_without_face_is_redetected(tmp_path: Path, model_dir: Path) -> None:
    anim = ready(make_config(tmp_path, model_dir, stitching=False))
    img = fit_square(cv2.imread(str(PORTRAIT)), 384)
    x = anim.driving_keypoints([AnimationInput(MotionState(), 0.0, 0, driver_frame=VideoFrame(img, 0.0, 0))])
    assert anim.redetections == 1
    np.testing.assert_allclose(x[0], anim.src.x_s[0], atol=1e-5)  # first driver frame = the reference
    blank = np.zeros((240, 320, 3), np.uint8)  # no face: idle from MotionState instead of a crash
    y = anim.animate(AnimationInput(MotionState(), 1.0, 1, driver_frame=VideoFrame(blank, 1.0, 1)))
    assert y.shape == (512, 512, 3)
