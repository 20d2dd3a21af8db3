"""The "liveportrait" animator: LivePortrait's ONNX exports driven by our face tracking, idle motion and audio.

Per frame with a driver face: crop 256 from our landmarks (our own tracker
re-detects when the pipeline gave none) -> motion extractor -> One-Euro
smoothing -> relative (default) or absolute motion -> optional eye/lip
retargeting -> stitching -> warping + generator -> paste back with the mask.
Without a driver face (idle), the source's own keypoints are rotated by
MotionState.rotation and the eyes/lips follow MotionState / the audio mouth
through the retargeting models. onnxruntime only, no torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from src.animation.base import ANIMATORS, AnimationInput, BaseAnimationModel
from src.animation.liveportrait import keypoints as kpm
from src.animation.liveportrait.crop import crop_image, crop_matrix, paste_back
from src.animation.liveportrait.models import LivePortraitModels
from src.animation.liveportrait.retarget import eye_input, eye_ratios, lip_input, lip_ratio, motion_eye_ratio, mouth_lip_ratio
from src.animation.liveportrait.source import NET_SIZE, SourceState, prepare_source, to_net
from src.capture.one_euro import OneEuroFilter
from src.core.config import AppConfig, resolve_path
from src.core.errors import ModelError
from src.core.frames import FaceObservation

if TYPE_CHECKING:
    from src.capture.face_tracker import FaceTracker

log = logging.getLogger(__name__)


class LivePortraitAnimator(BaseAnimationModel):
    name = "liveportrait"

    def __init__(self, config: AppConfig) -> None:
        super().__init__(config)
        self.cfg = config.animation.liveportrait
        self.models: LivePortraitModels | None = None
        self.src: SourceState | None = None
        self.source_from_cache = False
        self.on_timing: Callable[[str, float], None] | None = None  # (model name, ms) per inference call
        self._tracker: FaceTracker | None = None  # our own FaceTracker, only when the pipeline gives frames without faces
        self._filter = self._new_filter()
        self._d0: kpm.KpInfo | None = None  # first driver frame: the reference of relative motion
        self._eye_base: np.ndarray | None = None
        self._lip_base: np.ndarray | None = None
        self.last_x_d: np.ndarray | None = None  # driving keypoints of the last batch (diagnostics, tests)
        self.redetections = 0

    def _new_filter(self) -> OneEuroFilter | None:
        if not self.cfg.smoothing:
            return None
        return OneEuroFilter(self.cfg.smoothing_min_cutoff_hz, self.cfg.smoothing_beta, 1.0)

    # -- lifecycle --

    def load_model(self) -> None:
        if not self.cfg.model_dir:
            raise ModelError(
                "animation.liveportrait.model_dir: not set; point it at a folder with the LivePortrait ONNX exports "
                "(appearance_feature_extractor, motion_extractor, warping_spade, stitching, stitching_eye, stitching_lip)"
            )
        self.models = LivePortraitModels(resolve_path(self.cfg.model_dir), self.config.animation.onnx, self._timing)
        self.models.warmup()
        self.batched = self.models.dynamic_batch
        self.loaded = True

    def _timing(self, name: str, ms: float) -> None:
        if self.on_timing is not None:
            self.on_timing(name, ms)

    def preprocess_source_image(self, image_path: str | Path) -> None:
        if self.models is None:
            raise ModelError("liveportrait: call load_model() before preprocess_source_image()")
        self.src, self.source_from_cache = prepare_source(image_path, self.config, self.models)
        s = self.src
        # Retargeting deltas at the source's own ratios: subtracted so that neutral driving leaves x_s unchanged.
        self._eye_base = self.models.retarget_eye(s.x_s, eye_input(s.eye, float(np.mean(s.eye))))
        self._lip_base = self.models.retarget_lip(s.x_s, lip_input(s.lip, s.lip))
        self.reset_driver_reference()

    def reset_driver_reference(self) -> None:
        """Take the next driver frame as the neutral reference of relative motion (e.g. the window's `n` key)."""
        self._d0 = None
        if self._filter is not None:
            self._filter.reset()

    def source_preview(self) -> np.ndarray | None:
        return None if self.src is None else self.src.canvas.copy()

    def unload_model(self) -> None:
        self.models = None
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None
        self.loaded = False

    # -- driving --

    def _driver_face(self, inp: AnimationInput) -> FaceObservation | None:
        if inp.driver_face is not None or inp.driver_frame is None:
            return inp.driver_face
        if self._tracker is None:
            from src.capture.face_tracker import FaceTracker

            self._tracker = FaceTracker(self.config.tracking, static_image_mode=False, max_faces=1)
        faces = self._tracker.process(inp.driver_frame.image)
        self.redetections += 1
        return faces[0] if faces else None

    def _smooth(self, info: kpm.KpInfo, ts: float) -> kpm.KpInfo:
        if self._filter is None:
            return info
        vec = np.concatenate([np.radians([info.pitch[0], info.yaw[0], info.roll[0]]), info.exp.ravel(), info.t.ravel(), info.scale.ravel()])
        v = self._filter(vec, ts)
        n = kpm.N_KP * 3
        p, y, r = np.degrees(v[:3])
        return kpm.KpInfo(np.array([p]), np.array([y]), np.array([r]), v[3 + n : 6 + n].reshape(1, 3), v[3 : 3 + n].reshape(1, kpm.N_KP, 3),
                          v[6 + n : 7 + n].reshape(1, 1), info.kp)  # fmt: skip

    def _retarget(self, x_d: np.ndarray, motion: kpm.Motion, eye_ratio: float | None, lip: float | None) -> np.ndarray:
        """Replace the eye / lip keypoints' expression by the retargeting models' deltas for the given ratios."""
        assert self.models is not None and self.src is not None and self._eye_base is not None and self._lip_base is not None
        s = self.src
        scale = motion.scale.reshape(-1, 1, 1)
        if eye_ratio is not None:
            x_d = x_d.copy()
            x_d[:, kpm.EYE_KP] -= scale * (motion.exp[:, kpm.EYE_KP] - s.info.exp[:, kpm.EYE_KP])
            x_d = x_d + self.models.retarget_eye(s.x_s, eye_input(s.eye, eye_ratio)) - self._eye_base
        if lip is not None:
            x_d = x_d.copy()
            x_d[:, kpm.LIP_KP] -= scale * (motion.exp[:, kpm.LIP_KP] - s.info.exp[:, kpm.LIP_KP])
            x_d = x_d + self.models.retarget_lip(s.x_s, lip_input(s.lip, lip)) - self._lip_base
        return x_d

    def driving_keypoints(self, inputs: list[AnimationInput]) -> np.ndarray:
        """x_d (B, 21, 3) for each input (after retargeting and stitching)."""
        if self.models is None or self.src is None:
            raise ModelError("liveportrait: call load_model() and preprocess_source_image() first")
        s = self.src
        faces = [self._driver_face(inp) for inp in inputs]
        driven = [k for k, f in enumerate(faces) if f is not None and inputs[k].driver_frame is not None]
        infos: dict[int, kpm.KpInfo] = {}
        if driven:
            crops = []
            for k in driven:
                face, frame = faces[k], inputs[k].driver_frame
                assert face is not None and frame is not None  # `driven` holds only such k
                m = crop_matrix(face.landmarks, NET_SIZE, self.cfg.crop_scale, self.cfg.crop_vy_ratio)
                crops.append(to_net(crop_image(frame.image, m, NET_SIZE))[0])
            batch_info = self.models.motion(np.stack(crops))
            for j, k in enumerate(driven):
                infos[k] = self._smooth(batch_info.take(j), inputs[k].capture_ts)
        elif inputs and all(f is None for f in faces) and self._filter is not None:
            self._filter.reset()  # the driver is gone: start fresh when it returns
        audio_owns_mouth = self.config.animation.mouth_owner == "audio"
        out = []
        for k, inp in enumerate(inputs):
            eye_ratio: float | None = None
            lip: float | None = None
            if k in infos:
                info = infos[k]
                if self.cfg.relative_motion:
                    if self._d0 is None:
                        self._d0 = info
                    motion = kpm.relative_motion(s.info, info, self._d0)
                else:
                    motion = kpm.absolute_motion(s.info, info)
                face = faces[k]
                assert face is not None  # k is in `infos`: it was driven
                lm = face.landmarks
                if self.cfg.eye_retargeting:
                    eye_ratio = motion_eye_ratio(s.eye, inp.motion) if self.cfg.relative_motion else float(np.mean(eye_ratios(lm)))
                if inp.audio_mouth is not None and audio_owns_mouth:
                    lip = mouth_lip_ratio(s.lip, s.mouth_width_iod, inp.audio_mouth, self.cfg.audio_lip_gain)
                elif self.cfg.lip_retargeting:
                    lip = mouth_lip_ratio(s.lip, s.mouth_width_iod, inp.motion.mouth) if self.cfg.relative_motion else lip_ratio(lm)
            else:
                # Idle (or the driver's face is lost): the source's own keypoints, rotated by the idle/driver motion.
                motion = kpm.rotated_source_motion(s.info, inp.motion.rotation[None])
                eye_ratio = motion_eye_ratio(s.eye, inp.motion)
                mouth = inp.audio_mouth if inp.audio_mouth is not None else inp.motion.mouth
                lip = mouth_lip_ratio(s.lip, s.mouth_width_iod, mouth, self.cfg.audio_lip_gain)
            x_d = kpm.compose(s.info, motion)
            x_d = self._retarget(x_d, motion, eye_ratio, lip)
            if self.cfg.stitching:
                x_d = kpm.apply_stitching(x_d, self.models.stitching(s.x_s, x_d))
            out.append(x_d[0])
        return np.stack(out) if out else np.zeros((0, kpm.N_KP, 3))

    # -- rendering --

    def animate(self, inp: AnimationInput) -> np.ndarray:
        return self.animate_batch([inp])[0]

    def animate_batch(self, inputs: list[AnimationInput]) -> list[np.ndarray]:
        if not inputs:
            return []
        x_d = self.driving_keypoints(inputs)
        assert self.models is not None and self.src is not None
        self.last_x_d = x_d
        s = self.src
        gen = self.models.warp(s.feature_3d, x_d.astype(np.float32), s.x_s.astype(np.float32))  # [B, 3, 512, 512]
        frames = []
        for img in gen:
            crop = cv2.cvtColor(np.clip(np.rint(img.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
            frames.append(paste_back(s.canvas, crop, s.crop_m, s.mask))
        return frames

    def timings(self) -> dict[str, float]:
        """Mean ms per inference call per model (for stage metrics)."""
        return {} if self.models is None else self.models.timings()


ANIMATORS.register("liveportrait", LivePortraitAnimator)
