"""Audio-driven lip-sync U-Net (SyncTalk_2D / Ultralight style): template, audio windows, runtime animator.

Importing this package registers the "lipsync-unet" animator. It never imports
torch: the model definition (`model.py`), checkpoints and training are for the
tools in scripts/ only.
"""

from src.animation.lipsync_unet.animator import LipsyncUNetAnimator, unet_spec
from src.animation.lipsync_unet.audio_windows import LatestMelWindow, MelWindowStream, mel_windows, window_loudness_db
from src.animation.lipsync_unet.template import AvatarTemplate, TemplateError, prepare_template

__all__ = [
    "AvatarTemplate",
    "LatestMelWindow",
    "LipsyncUNetAnimator",
    "MelWindowStream",
    "TemplateError",
    "mel_windows",
    "prepare_template",
    "unet_spec",
    "window_loudness_db",
]
