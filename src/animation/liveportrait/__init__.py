"""LivePortrait through its standard ONNX exports (ANCHORS.md), driven by our face tracking.

Importing this package registers the "liveportrait" animator (onnxruntime only).
"""

from src.animation.liveportrait.animator import LivePortraitAnimator
from src.animation.liveportrait.crop import crop_matrix, fit_square, paste_back, paste_mask
from src.animation.liveportrait.models import REQUIRED, SPECS, LivePortraitModels, model_files

__all__ = [
    "REQUIRED",
    "SPECS",
    "LivePortraitAnimator",
    "LivePortraitModels",
    "crop_matrix",
    "fit_square",
    "model_files",
    "paste_back",
    "paste_mask",
]
