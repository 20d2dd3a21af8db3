"""The stage graph: capture -> landmarks -> animate -> outputs, live (`LivePipeline`) or offline (`render`)."""

from src.pipeline.fanout import OutputFanout
from src.pipeline.live import AnimateStage, LandmarkStage, LivePipeline
from src.pipeline.offline import RenderResult, render

__all__ = ["AnimateStage", "LandmarkStage", "LivePipeline", "OutputFanout", "RenderResult", "render"]
