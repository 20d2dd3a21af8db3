"""Animators behind one interface, chosen by name: `create_animator("meshwarp", config)`."""

from src.animation import meshwarp  # noqa: F401 - registers the default animator
from src.animation.avatar import AvatarCache, PreparedAvatar, prepare_avatar
from src.animation.base import ANIMATORS, AnimationInput, BaseAnimationModel, create_animator
from src.animation.idle import IdleMotion
from src.animation.meshwarp import MeshWarpAnimator, prepare_meshwarp_source
from src.animation.motion_mixer import MotionMixer, blend_motion
from src.animation.warp import PiecewiseAffineWarper

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
