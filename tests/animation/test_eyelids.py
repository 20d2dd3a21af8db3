"""Closed eyelids in the meshwarp output (src/animation/meshwarp/lids.py): a blink of the driver closes the eye (skin
over the iris, found closed again by MediaPipe); eyes narrowed by an expression or by the rig alone stay open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.animation import AnimationInput, create_animator
from src.animation.meshwarp.lids import closure
from src.capture import FaceTracker
from src.core.face_mesh import measure
from src.core.frames import MotionState


@pytest.fixture(scope="module")
def tracker():
    with FaceTracker(static_image_mode=True) as t:
        yield t


def _eye_open(tracker, image: np.ndarray) -> float:
    faces = tracker.process(image[..., :3])
    assert faces, "the face is found again"
    return float(np.mean(measure(faces[0].landmarks).eye_open))


def _blink(level: float) -> MotionState:
    return MotionState(eye_open=(level, level), param_weight=1.0)  # as idle motion blinks


def _render(anim, motion: MotionState) -> np.ndarray:
    return anim.animate(AnimationInput(motion=motion, capture_ts=0.0, index=0))


def test_a_blink_closes_the_eyes(make_config, portrait_path: Path, portrait_animator, tracker) -> None:
    no_lids = create_animator("meshwarp", make_config("animation.meshwarp.eye_layer=false"))
    no_lids.load_model()
    no_lids.preprocess_source_image(str(portrait_path))
    open_ = _eye_open(tracker, _render(portrait_animator, MotionState()))
    closed = _eye_open(tracker, _render(portrait_animator, _blink(0.15)))
    warp_only = _eye_open(tracker, _render(no_lids, _blink(0.15)))
    print(f"\neye opening re-detected: open {open_:.3f}, blink {closed:.3f} (warp alone {warp_only:.3f})")
    assert closed < 0.5 * open_, "the blinking eye is seen closed"
    assert closed < warp_only, "the lid skin closes it further than the warp alone"


def test_eyes_narrowed_by_an_expression_stay_open(make_config, portrait_path: Path, tracker) -> None:
    anim = create_animator("meshwarp", make_config())
    anim.load_model()
    anim.preprocess_source_image(str(portrait_path))
    anim.set_expression("anger", 1.0, instant=True)  # narrows the eyes to about half their gap
    angry = _render(anim, MotionState())
    anim.set_expression("none", 0.0, instant=True)
    assert _eye_open(tracker, angry) > 0.6 * _eye_open(tracker, _render(anim, MotionState()))


def test_closure_needs_the_driver_and_the_output_both_closing() -> None:
    assert closure(0.2, 0.3, 1.0) == 1.0  # a blink: the driver's eye shut, the output's lids near
    assert closure(1.0, 0.45, 1.0) == 0.0  # anger narrows the output's eye; the driver's is open
    assert closure(0.2, 1.0, 1.0) == 0.0  # the driver blinks but the output's eye is wide (gain 0): no lid over it
    assert 0.0 < closure(0.5, 0.5, 1.0) < 1.0  # half way: the lid is coming
