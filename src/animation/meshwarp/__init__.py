"""The default animator: a piecewise-affine warp of the portrait's face mesh, no weights.

Private parts: `mesh` (triangles and rings), `rig` (retargeting), `mouth_layers`, `warp` and `raster`
(the compiled backward map), `avatar` (the content-hash cached preparation).
"""

from src.animation.meshwarp.animator import MeshWarpAnimator, prepare_meshwarp_source
from src.animation.meshwarp.avatar import AvatarCache, PreparedAvatar, file_hash, prepare_avatar
from src.animation.meshwarp.warp import PiecewiseAffineWarper

__all__ = ["AvatarCache", "MeshWarpAnimator", "PiecewiseAffineWarper", "PreparedAvatar", "file_hash", "prepare_avatar",
           "prepare_meshwarp_source"]
