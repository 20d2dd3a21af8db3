"""Outputs: where animated frames go. `create_output("file:out.mp4", config)`."""

from src.output import file_output, null_output, vcam, webrtc, window  # noqa: F401 - registers the outputs
from src.output.base import OUTPUTS, Output, PipelineControls, create_output, parse_output_spec
from src.output.fanout import OutputFanout
from src.output.file_output import FileOutput
from src.output.null_output import NullOutput
from src.output.timestamp_code import capture_wall_ms, read_stamp, stamp
from src.output.vcam import VirtualCameraOutput, describe_vcam_backends
from src.output.webrtc import WebRTCOutput
from src.output.window import WindowOutput

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
