"""Driver capture (webcam, video file, still image) and face tracking."""

from src.capture.face_motion import FaceMotionExtractor
from src.capture.face_tracker import FaceTracker
from src.capture.one_euro import OneEuroFilter
from src.capture.sources import CaptureSource, ImageSource, VideoCaptureSource, list_cameras, open_capture, parse_driver, read_image

__all__ = [
    "CaptureSource",
    "FaceMotionExtractor",
    "FaceTracker",
    "ImageSource",
    "OneEuroFilter",
    "VideoCaptureSource",
    "list_cameras",
    "open_capture",
    "parse_driver",
    "read_image",
]
