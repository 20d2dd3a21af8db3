"""Idle motion (blinks, breathing, sway), and the hand-over between the driver and idle in the motion mixer."""

from __future__ import annotations

import numpy as np
import pytest

from src.animation import IdleMotion, MotionMixer, blend_motion
from src.capture import FaceMotionExtractor, FaceTracker
from src.core.config import IdleConfig
from src.core.face_mesh import euler_to_rotation, rotation_to_euler
from src.core.frames import MotionState, RenderedFrame
from src.output.base import Output
from src.pipeline import render
from tests.support.media import rotate_image

FPS = 30.0


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """The angle of the rotation taking a to b."""
    c = (np.trace(np.asarray(a, np.float64).T @ np.asarray(b, np.float64)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _series(idle: IdleMotion, seconds: float) -> list[MotionState]:
    return [idle.state(i / FPS) for i in range(int(seconds * FPS))]


def _blink_starts(states: list[MotionState]) -> list[float]:
    closed = np.array([s.eye_open[0] < 0.5 for s in states])
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    return [i / FPS for i in starts]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_blinks_every_2_to_6_seconds(seed: int) -> None:
    cfg = IdleConfig(seed=seed)
    states = _series(IdleMotion(cfg), 40.0)
    eyes = np.array([s.eye_open for s in states])
    assert np.all(eyes >= 0.0) and np.all(eyes <= 1.0)
    assert np.array_equal(eyes[:, 0], eyes[:, 1])  # both eyes together
    assert eyes.min() < 0.1  # a blink really closes the eyes
    starts = _blink_starts(states)
    assert 6 <= len(starts) <= 21, starts
    assert starts[0] <= 3.0 + 0.1  # the first comes within half the longest interval
    gaps = np.diff(starts)
    dur = cfg.blink_duration_ms / 1000.0
    assert np.all(gaps >= 2.0 - 0.05) and np.all(gaps <= 6.0 + dur + 0.1), gaps
    # Each blink is short: the eyes are below half open for less than the blink duration.
    closed = np.array([s.eye_open[0] < 0.5 for s in states])
    assert closed.sum() / len(starts) <= dur * FPS + 1


def test_blink_interval_is_configurable() -> None:
    states = _series(IdleMotion(IdleConfig(seed=5, blink_interval_s=(1.0, 1.5))), 20.0)
    gaps = np.diff(_blink_starts(states))
    assert len(gaps) >= 10 and np.all(gaps >= 0.95) and np.all(gaps <= 1.5 + 0.3)


def test_breathes_at_its_period() -> None:
    cfg = IdleConfig(seed=1)
    states = _series(IdleMotion(cfg), 45.0)
    ty = np.array([s.translation[1] for s in states])
    scale = np.array([s.scale for s in states])
    assert np.ptp(scale) == pytest.approx(2 * cfg.breath_amplitude, rel=0.05)
    spec = np.abs(np.fft.rfft(ty - ty.mean()))
    freqs = np.fft.rfftfreq(len(ty), 1 / FPS)
    assert freqs[np.argmax(spec)] == pytest.approx(1 / cfg.breath_period_s, abs=1 / 45.0)
    assert np.corrcoef(ty, scale)[0, 1] < -0.99  # rising (negative y) while the chest expands


def test_sways_slowly_within_its_range() -> None:
    cfg = IdleConfig(seed=2)
    states = _series(IdleMotion(cfg), 30.0)
    euler = np.array([rotation_to_euler(s.rotation) for s in states])
    for k in range(3):
        assert np.std(euler[:, k]) > 0.2  # every axis moves
    assert np.abs(euler).max() <= cfg.sway_deg * 1.3
    steps = [_angle_deg(a.rotation, b.rotation) for a, b in zip(states, states[1:], strict=False)]
    assert max(steps) < 0.2  # slow: no jerks between frames
    assert all(not s.face_present and s.expression is None for s in states)


def test_no_sway_when_sway_is_zero() -> None:
    states = _series(IdleMotion(IdleConfig(seed=1, sway_deg=0.0, breath_amplitude=0.0)), 3.0)
    assert all(_angle_deg(s.rotation, np.eye(3)) < 1e-4 for s in states)


def test_seed_makes_it_repeatable() -> None:
    a = _series(IdleMotion(IdleConfig(seed=9)), 8.0)
    b = _series(IdleMotion(IdleConfig(seed=9)), 8.0)
    c = _series(IdleMotion(IdleConfig(seed=10)), 8.0)
    assert all(np.array_equal(x.rotation, y.rotation) and x.eye_open == y.eye_open for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x.rotation, y.rotation) for x, y in zip(a, c, strict=True))


class _Keep(Output):
    """Keeps every rendered frame (offline: every frame, in order)."""

    name = "keep"
    realtime = False

    def __init__(self) -> None:
        self.frames: list[RenderedFrame] = []

    def open(self, width: int, height: int, fps: float) -> None:
        pass

    def write(self, frame: RenderedFrame) -> None:
        self.frames.append(frame)


def test_rendered_idle_is_never_frozen(make_config, portrait_animator) -> None:
    """10 s of render with no driver: no two consecutive frames are identical, and the eyes blink."""
    cfg = make_config("idle.seed=3")
    keep = _Keep()
    result = render(cfg, portrait_animator, [keep], n_frames=300, fps=FPS)
    assert result.frames == 300 and len(keep.frames) == 300
    images = np.stack([f.image for f in keep.frames]).astype(np.int16)
    step = np.abs(np.diff(images, axis=0)).reshape(299, -1).max(axis=1)
    assert np.all(step > 0), f"frozen at frames {np.flatnonzero(step == 0)}"
    # Blinks show: the eye region darkens and brightens several times (2-6 s apart over 10 s).
    lm = portrait_animator.source.avatar.landmarks
    x0, y0 = lm[[33, 263], 0].min() - 3, lm[[159, 386], 1].min() - 3
    x1, y1 = lm[[33, 263], 0].max() + 3, lm[[145, 374], 1].max() + 3
    eyes = images[:, int(y0) : int(y1), int(x0) : int(x1)].mean(axis=(1, 2, 3))
    assert np.ptp(eyes) > 2.0


# -- the motion mixer: driver <-> idle ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driven_states(portrait_bgr: np.ndarray) -> list[MotionState]:
    """Real driver motion: 10 frames of the portrait (neutral), then 20 frames tilted by 15 degrees."""
    tilted = rotate_image(portrait_bgr, 15.0, (220, 130))
    with FaceTracker() as tracker:
        ext = FaceMotionExtractor()
        out = []
        for i, img in enumerate([portrait_bgr] * 10 + [tilted] * 20):
            m = ext.update(tracker.process(img)[0], i / FPS)
            assert m is not None
            out.append(m)
    assert abs(rotation_to_euler(out[-1].rotation)[2]) > 12
    return out


def _run_mixer(mixer: MotionMixer, plan: list[MotionState | None]) -> list[MotionState]:
    return [mixer.update(i / FPS, m) for i, m in enumerate(plan)]


def test_face_lost_holds_then_idle_eases_from_the_last_pose(make_config, driven_states: list[MotionState]) -> None:
    cfg = make_config("idle.seed=4")
    lost_s = cfg.tracking.lost_after_ms / 1000
    ease_s = cfg.idle.ease_ms / 1000
    plan: list[MotionState | None] = list(driven_states) + [None] * int(3 * FPS)
    mixer = MotionMixer(cfg)
    modes, outs = [], []
    for i, m in enumerate(plan):
        outs.append(mixer.update(i / FPS, m))
        modes.append(mixer.mode)
    n = len(driven_states)
    last = driven_states[-1]
    hold_frames = [i for i in range(n, len(plan)) if modes[i] == "holding"]
    # Held for lost_after_ms (the last pose, unchanged), then idle.
    assert len(hold_frames) == pytest.approx(lost_s * FPS, abs=1.5)
    for i in hold_frames:
        assert np.array_equal(outs[i].rotation, last.rotation)
    first_idle = hold_frames[-1] + 1
    assert all(mode == "idle" for mode in modes[first_idle:])
    # Idle eases in from the last pose: no jump at the hand-over, and every step is small.
    steps = [_angle_deg(a.rotation, b.rotation) for a, b in zip(outs[n - 1 :], outs[n:], strict=False)]
    assert max(steps) < 2.0, max(steps)
    assert _angle_deg(outs[first_idle].rotation, last.rotation) < 1.0
    # After the ease the output is pure idle.
    idle = IdleMotion(cfg.idle)
    t_end = (len(plan) - 1) / FPS
    assert t_end - first_idle / FPS > ease_s
    assert _angle_deg(outs[-1].rotation, idle.state(t_end).rotation) < 1e-3
    trans_steps = [float(np.abs(b.translation - a.translation).max()) for a, b in zip(outs[n - 1 :], outs[n:], strict=False)]
    assert max(trans_steps) < 0.05


def test_face_returns_blends_in_without_a_jump(make_config, driven_states: list[MotionState]) -> None:
    cfg = make_config("idle.seed=4")
    blend_s = cfg.idle.blend_in_ms / 1000
    tilted = driven_states[-1]
    idle_frames = int(2 * FPS)
    plan: list[MotionState | None] = [None] * idle_frames + [tilted] * int(1 * FPS)
    mixer = MotionMixer(cfg)
    outs = _run_mixer(mixer, plan)
    jump = _angle_deg(outs[idle_frames - 1].rotation, tilted.rotation)
    assert jump > 10  # without blending this would be one frame's jump
    ret = outs[idle_frames - 1 :]
    steps = [_angle_deg(a.rotation, b.rotation) for a, b in zip(ret, ret[1:], strict=False)]
    print(f"return to the driver: total {jump:.1f} deg, largest step {max(steps):.2f} deg/frame")
    assert max(steps) < 0.5 * jump
    # Smooth: over ~blend_in_ms, no step more than twice the average needed to cover it.
    assert max(steps) < 2.0 * jump / (blend_s * FPS)
    reached = next(i for i, o in enumerate(ret) if _angle_deg(o.rotation, tilted.rotation) < 1e-3)
    assert reached / FPS == pytest.approx(blend_s, abs=2 / FPS)
    trans_steps = [float(np.abs(b.translation - a.translation).max()) for a, b in zip(ret, ret[1:], strict=False)]
    assert max(trans_steps) < 0.5 * max(float(np.abs(tilted.translation - ret[0].translation).max()), 0.02) + 0.01


def test_blend_motion_endpoints_and_midpoint() -> None:
    a = MotionState(rotation=euler_to_rotation(0, 0, 0), eye_open=(1.0, 1.0))
    b = MotionState(rotation=euler_to_rotation(20, 0, 0), eye_open=(0.0, 0.0), expression=np.ones((478, 3), np.float32))
    assert np.array_equal(blend_motion(a, b, 0.0).rotation, a.rotation)
    assert np.array_equal(blend_motion(a, b, 1.0).rotation, b.rotation)
    mid = blend_motion(a, b, 0.5)
    assert rotation_to_euler(mid.rotation)[0] == pytest.approx(10.0, abs=0.5)
    assert np.allclose(mid.rotation @ mid.rotation.T, np.eye(3), atol=1e-5)  # still a rotation
    assert mid.eye_open == (0.5, 0.5)
    assert mid.expression is not None and np.allclose(mid.expression, 0.5)


def test_idle_disabled_stays_neutral(make_config) -> None:
    mixer = MotionMixer(make_config("idle.enabled=false"))
    outs = _run_mixer(mixer, [None] * 60)
    assert all(_angle_deg(o.rotation, np.eye(3)) < 1e-6 and o.eye_open == (1.0, 1.0) for o in outs)
