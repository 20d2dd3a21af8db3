"""The data that flows between pipeline stages.

Every item carries `capture_ts`: the `time.monotonic()` instant its driver frame
(or, with no driver, its tick) was captured, so latency at an output is
measured as `time.monotonic() - capture_ts`, never estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KEY_BGR = (64, 177, 0)  # #00B140, broadcast chroma green: the key colour where an output cannot carry alpha

@dataclass(slots=True)
class VideoFrame:
    """One captured driver frame (webcam, video file or still image)."""

    image: np.ndarray  # H x W x 3, uint8, BGR
    capture_ts: float  # time.monotonic() at capture
    index: int  # 0, 1, 2, ... in capture order
    media_time_s: float | None = None  # position in a file (None for live cameras)


@dataclass(slots=True)
class FaceObservation:
    """One tracked face in one frame.

    `landmarks` are MediaPipe's 478 points in pixels of the frame they came from;
    z is MediaPipe's relative depth in the same pixel scale as x (larger = farther).
    """

    landmarks: np.ndarray  # (478, 3) float32
    frame_size: tuple[int, int]  # (width, height)
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, y0, x1, y1 px

    @property
    def width_px(self) -> float:
        return float(self.bbox[2] - self.bbox[0])


@dataclass(slots=True)
class MouthShape:
    """Mouth parameters for one instant, from audio or from the webcam.

    open:   lip opening, in units of the inter-ocular distance (0 = closed)
    width:  relative change of mouth width (0 = neutral, +0.2 = spread, -0.2 = narrow)
    round:  0..1 rounding / pucker (O, U)
    closed: 0..1 how firmly the lips are pressed (P, B, M)
    """

    open: float = 0.0
    width: float = 0.0
    round: float = 0.0
    closed: float = 0.0

    def scaled(self, k: float) -> MouthShape:
        return MouthShape(self.open * k, self.width * k, self.round * k, self.closed * k)


@dataclass(slots=True)
class MotionState:
    """Driving motion relative to the driver's neutral face.

    Rotation is a 3x3 matrix in camera coordinates (x right, y down, z away);
    translation is in units of the driver's inter-ocular distance; `expression`
    holds per-landmark offsets (478 x 3) in the driver's neutral, face-aligned
    frame, also in inter-ocular units, or None when motion is synthetic (idle).
    """

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3, dtype=np.float32))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.float32))
    scale: float = 1.0
    eye_open: tuple[float, float] = (1.0, 1.0)  # left, right; 1 = neutral, 0 = closed
    brow_raise: tuple[float, float] = (0.0, 0.0)  # in inter-ocular units, + = up
    mouth: MouthShape = field(default_factory=MouthShape)
    expression: np.ndarray | None = None
    face_present: bool = False
    absolute_rotation: np.ndarray | None = None  # driver's face-frame axes (columns) in camera coordinates
    # How much the parametric fields drive the face on top of `expression`:
    # 1 for synthetic motion (idle), 0 for a webcam whose landmarks carry it all; blends in between.
    param_weight: float = 1.0  # eyes and brows from eye_open / brow_raise
    mouth_weight: float = 1.0  # mouth from `mouth` (audio), replacing the expression's mouth region

    def copy(self) -> MotionState:
        return MotionState(
            rotation=self.rotation.copy(),
            translation=self.translation.copy(),
            scale=self.scale,
            eye_open=self.eye_open,
            brow_raise=self.brow_raise,
            mouth=MouthShape(self.mouth.open, self.mouth.width, self.mouth.round, self.mouth.closed),
            expression=None if self.expression is None else self.expression.copy(),
            face_present=self.face_present,
            absolute_rotation=None if self.absolute_rotation is None else self.absolute_rotation.copy(),
            param_weight=self.param_weight,
            mouth_weight=self.mouth_weight,
        )


@dataclass(slots=True)
class TrackedFrame:
    """A driver frame after face tracking (the landmarks stage's output)."""

    frame: VideoFrame | None  # None for a synthetic tick (no driver)
    capture_ts: float
    index: int
    face: FaceObservation | None = None
    motion: MotionState | None = None  # None when no face is being tracked
    media_time_s: float | None = None
    corrupt: bool = False


@dataclass(slots=True)
class RenderedFrame:
    """An animated output frame, ready for the outputs."""

    image: np.ndarray  # S x S x 3, uint8, BGR
    capture_ts: float
    index: int
    media_time_s: float | None = None
    stage_ts: dict[str, float] = field(default_factory=dict)  # stage name -> monotonic time it finished
    meta: dict[str, float] = field(default_factory=dict)  # e.g. "mouth_open" the frame was rendered with
    bgra: np.ndarray | None = None  # S x S x 4, straight alpha (animation.background: transparent), for outputs that carry it
