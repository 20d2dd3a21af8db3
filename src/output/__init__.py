"""Outputs: where animated frames go. `create_output("file:out.mp4", config)`.

The virtual camera (`src.output.vcam`) and the WebRTC preview (`src.output.webrtc`, aiortc) are imported
when first asked for by name, so a file render never loads them.
"""

from src.output import file_output, null_output, window  # noqa: F401 - registers the outputs
from src.output.audio_mux import AudioFileMux, AudioMuxSource, LivePcmMux
from src.output.base import OUTPUTS, Output, PipelineControls, create_output, parse_output_spec
from src.output.file_output import FileOutput
from src.output.null_output import NullOutput
from src.output.timestamp_code import capture_wall_ms, read_stamp, stamp
from src.output.window import WindowOutput

OUTPUTS.register_lazy("vcam", "src.output.vcam")
OUTPUTS.register_lazy("webrtc", "src.output.webrtc")

__all__ = [
    "OUTPUTS",
    "AudioFileMux",
    "AudioMuxSource",
    "FileOutput",
    "LivePcmMux",
    "NullOutput",
    "Output",
    "PipelineControls",
    "WindowOutput",
    "capture_wall_ms",
    "create_output",
    "parse_output_spec",
    "read_stamp",
    "stamp",
]
