"""The "lipsync-unet" animator: a person-specific U-Net (ONNX Runtime) over a talking-video template.

Silence shows the template's frames (played forward, then backward); frames with
speech in their 200 ms mel window (`AnimationInput.audio_features`, [1, 80, 16]
or [80, 16]) go through the U-Net in one batched call per `animate_batch` (reference: the
nearest closed-mouth template frame, as in training), and the new mouth is
pasted back through a feathered mask. No torch at run time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from src.animation.base import ANIMATORS, AnimationInput, BaseAnimationModel
from src.animation.lipsync_unet.audio_windows import WINDOW, window_loudness_db
from src.animation.lipsync_unet.geometry import BORDER, crop_box, network_input, network_output_to_bgr, paste_crop, paste_mask
from src.animation.lipsync_unet.template import AvatarTemplate, TemplateError, prepare_template
from src.animation.liveportrait.crop import fit_square
from src.animation.onnx_session import BATCH, ModelSpec, OnnxModel
from src.core.config import AppConfig, resolve_path
from src.core.errors import ModelError

log = logging.getLogger(__name__)

N_MELS = 80
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


def unet_spec(size: int, audio_feature_dim: int | None = None) -> ModelSpec:
    audio = (BATCH, audio_feature_dim) if audio_feature_dim else (BATCH, 1, N_MELS, WINDOW)
    return ModelSpec(inputs={"image": (BATCH, 6, size, size), "audio": audio}, outputs={"out": (BATCH, 3, size, size)})


AUDIO_ENCODER_SPEC = ModelSpec(inputs={"mel": (BATCH, 1, N_MELS, WINDOW)}, outputs={"feature": (BATCH, None)})


class LipsyncUNetAnimator(BaseAnimationModel):
    name = "lipsync-unet"
    batched = True
    needs_audio_features = True

    def __init__(self, config: AppConfig) -> None:
        super().__init__(config)
        self.cfg = config.animation.lipsync_unet
        self.size = int(self.cfg.size)
        self.crop_size = self.size + 2 * BORDER
        self.unet: OnnxModel | None = None
        self.audio_encoder: OnnxModel | None = None
        self.template: AvatarTemplate | None = None
        self._mask = paste_mask(self.crop_size, self.cfg.feather_px)
        self.frames_synthesised = 0
        self._ref_cache: dict[int, np.ndarray] = {}
        self.frames_template = 0
        self.frames_closed = 0  # silent frames whose template mouth was open (also in frames_synthesised)

    def load_model(self) -> None:
        if not self.cfg.onnx_path:
            hint = " (a checkpoint is set: export it with scripts/export_onnx.py)" if self.cfg.checkpoint else ""
            raise ModelError(
                f"animation.lipsync_unet.onnx_path: not set{hint}; train with scripts/train_lipsync.py --video TALKING.mp4 "
                "and export with scripts/export_onnx.py"
            )
        onnx_cfg = self.config.animation.onnx
        feat_dim = None
        if self.cfg.audio_encoder_onnx:
            enc_path = resolve_path(self.cfg.audio_encoder_onnx)
            self.audio_encoder = OnnxModel(enc_path, AUDIO_ENCODER_SPEC, onnx_cfg, name="audio_encoder")
            shape = self.audio_encoder.session.get_outputs()[0].shape
            if len(shape) != 2 or not isinstance(shape[1], int):
                raise ModelError(f"model file {enc_path}: output 'feature' must be [B, F] with a fixed F; found {shape}")
            feat_dim = int(shape[1])
        self.unet = OnnxModel(resolve_path(self.cfg.onnx_path), unet_spec(self.size, feat_dim), onnx_cfg, name="lipsync_unet")
        self.unet.warmup()
        self.loaded = True

    def preprocess_source_image(self, image_path: str | Path) -> None:
        """The source is a prepared template folder, a talking video (prepared and cached), or, for any
        other path (e.g. the portrait), the template set in animation.lipsync_unet.template."""
        p = Path(image_path).expanduser() if image_path else None
        if p is not None and p.is_dir():
            self.template = AvatarTemplate.load(p)
        elif p is not None and p.suffix.lower() in VIDEO_SUFFIXES and p.is_file():
            self.template = AvatarTemplate.load(prepare_template(p, self.config))
        elif self.cfg.template:
            tp = resolve_path(self.cfg.template)
            is_video = tp.is_file() and tp.suffix.lower() in VIDEO_SUFFIXES
            self.template = AvatarTemplate.load(prepare_template(tp, self.config) if is_video else tp)
        else:
            raise TemplateError(
                "animation.lipsync_unet.template: not set; the lip-sync model animates a talking video, "
                "not a still: run `main.py prepare --video TALKING.mp4` and set the template"
            )
        self._ref_cache = {}
        if abs(self.template.fps - self.config.pipeline.fps) > 0.5:
            log.info("template %s runs at %.2f fps, the pipeline at %.2f fps", self.template.path, self.template.fps,
                     self.config.pipeline.fps)  # fmt: skip

    def source_preview(self) -> np.ndarray | None:
        return None if self.template is None else fit_square(self.template.frame(0), self.output_size)

    # -- per frame --

    def _is_speech(self, feat: np.ndarray | None) -> bool:
        return feat is not None and window_loudness_db(feat) >= self.cfg.silence_threshold_db

    @staticmethod
    def _mel(feat: np.ndarray | None) -> np.ndarray:
        if feat is None:  # no audio at all: a silent window
            return np.full((1, N_MELS, WINDOW), -4.0, np.float32)
        return np.asarray(feat, np.float32).reshape(1, N_MELS, WINDOW)

    def _reference(self, i: int) -> np.ndarray:
        """Inner crop of the closed-mouth frame nearest to template frame i (as in training)."""
        assert self.template is not None
        r = int(self.template.reference_index[i])
        ref = self._ref_cache.get(r)
        if ref is None:
            crop = crop_box(self.template.frame(r), self.template.boxes[r], self.crop_size)
            ref = crop[BORDER : BORDER + self.size, BORDER : BORDER + self.size].copy()
            if len(self._ref_cache) >= 256:
                self._ref_cache.pop(next(iter(self._ref_cache)))
            self._ref_cache[r] = ref
        return ref

    def animate(self, inp: AnimationInput) -> np.ndarray:
        return self.animate_batch([inp])[0]

    def animate_batch(self, inputs: list[AnimationInput]) -> list[np.ndarray]:
        if self.template is None or self.unet is None:
            raise ModelError("lipsync-unet: call load_model() and preprocess_source_image() first")
        tpl = self.template
        idx = [tpl.pingpong(inp.index) for inp in inputs]
        frames: list[np.ndarray] = [tpl.frame(i) for i in idx]
        speech = [k for k, inp in enumerate(inputs) if self._is_speech(inp.audio_features)]
        # A talking template mouths its own words; in silence its open-mouth frames are closed by the network.
        closing = [k for k in range(len(inputs)) if self.cfg.close_mouth_in_silence and k not in speech and tpl.open_mouth[idx[k]]]
        self.frames_closed += len(closing)
        speech = sorted(speech + closing)
        if speech:
            crops = [crop_box(frames[k], tpl.boxes[idx[k]], self.crop_size) for k in speech]
            inner = [c[BORDER : BORDER + self.size, BORDER : BORDER + self.size] for c in crops]
            image = np.stack([network_input(self._reference(idx[k]), x) for k, x in zip(speech, inner, strict=True)])
            mel = np.stack([self._mel(inputs[k].audio_features) for k in speech])
            audio = self.audio_encoder.run({"mel": mel})["feature"] if self.audio_encoder is not None else mel
            out = self.unet.run({"image": image, "audio": audio})["out"]
            for j, k in enumerate(speech):
                crop = crops[j].copy()
                crop[BORDER : BORDER + self.size, BORDER : BORDER + self.size] = network_output_to_bgr(out[j])
                frames[k] = paste_crop(frames[k], tpl.boxes[idx[k]], crop, self._mask)
        self.frames_synthesised += len(speech)
        self.frames_template += len(inputs) - len(speech)
        return [fit_square(f, self.output_size) for f in frames]

    def unload_model(self) -> None:
        self.unet = None
        self.audio_encoder = None
        self.loaded = False


ANIMATORS.register("lipsync-unet", LipsyncUNetAnimator)
