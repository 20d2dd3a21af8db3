"""Outputs: where animated frames go. `create_output("file:out.mp4", config)`.

The virtual camera and the WebRTC preview (aiortc) are imported when first asked for.
"""

from typing import Any

from src.output import file_output, null_output, window  # noqa: F401 - registers the outputs
from src.output.base import OUTPUTS, Output, PipelineControls, create_output, parse_output_spec
from src.output.fanout import OutputFanout
from src.output.file_output import FileOutput
from src.output.null_output import NullOutput
from src.output.timestamp_code import capture_wall_ms, read_stamp, stamp
from src.output.window import WindowOutput

OUTPUTS.register_lazy("vcam", "src.output.vcam")
OUTPUTS.register_lazy("webrtc", "src.output.webrtc")

_LAZY = {
    "VirtualCameraOutput": "src.output.vcam",
    "describe_vcam_backends": "src.output.vcam",
    "WebRTCOutput": "src.output.webrtc",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'src.output' has no attribute {name!r}")


__all__ = [
    "OUTPUTS",
    "FileOutput",
    "NullOutput",
    "Output",
    "OutputFanout",
    "PipelineControls",
    "VirtualCameraOutput",
    "WebRTCOutput",
    "WindowOutput",
    "capture_wall_ms",
    "create_output",
    "describe_vcam_backends",
    "parse_output_spec",
    "read_stamp",
    "stamp",
]
