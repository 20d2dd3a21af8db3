"""Animators behind one interface, chosen by name: `create_animator("meshwarp", config)`."""

from src.animation.base import ANIMATORS, AnimationInput, BaseAnimationModel, create_animator
from src.animation.meshwarp import (  # importing it registers the default animator
    AvatarCache,
    MeshWarpAnimator,
    PiecewiseAffineWarper,
    PreparedAvatar,
    prepare_avatar,
    prepare_meshwarp_source,
)
from src.animation.motion import IdleMotion, MotionMixer, blend_motion

# Neural animators import onnxruntime and more: only when asked for by name.
ANIMATORS.register_lazy("liveportrait", "src.animation.liveportrait")
ANIMATORS.register_lazy("lipsync-unet", "src.animation.lipsync_unet")

__all__ = [
    "ANIMATORS",
    "AnimationInput",
    "AvatarCache",
    "BaseAnimationModel",
    "IdleMotion",
    "MeshWarpAnimator",
    "MotionMixer",
    "PiecewiseAffineWarper",
    "PreparedAvatar",
    "blend_motion",
    "create_animator",
    "prepare_avatar",
    "prepare_meshwarp_source",
]
