"""Motion shared by every animator: idle motion and the mixer of driver, idle and audio motion."""

from src.animation.motion.idle import IdleMotion
from src.animation.motion.mixer import MotionMixer, blend_motion

__all__ = ["IdleMotion", "MotionMixer", "blend_motion"]
