"""The `/metrics` page: Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

import math
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{lab}}} {_num(value)}" if lab else f"{name} {_num(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(stats: dict[str, Any], stages: dict[str, dict[str, Any]]) -> str:
    """Metrics text from the output's `stats()` and the pipeline's per-stage snapshot."""
    w = _Writer()
    w.metric("puppetcam_ready", "gauge", "1 once models are loaded and a first frame was produced.",
             [({}, 1 if stats.get("ready") else 0)])
    w.metric("puppetcam_output_fps", "gauge", "Frames per second reaching the WebRTC output.", [({}, stats["fps"])])
    lat = stats.get("latency_ms") or {}
    w.metric("puppetcam_latency_ms", "gauge", "Capture-to-output latency of recent frames, by quantile.",
             [({"quantile": q}, lat.get(k, float("nan"))) for q, k in (("0.5", "p50"), ("0.95", "p95"))])
    w.metric("puppetcam_frames_total", "counter", "Frames that reached the WebRTC output.", [({}, stats["frames"])])
    w.metric("puppetcam_frames_dropped_total", "counter", "Frames dropped by the pipeline's stages (all stages).",
             [({}, stats["drops"])])
    w.metric("puppetcam_webrtc_viewers", "gauge", "Connected WebRTC viewers.", [({}, stats["viewers"])])
    w.metric("puppetcam_webrtc_viewers_total", "counter", "WebRTC viewers accepted since start.",
             [({}, stats["viewers_total"])])
    w.metric("puppetcam_webrtc_viewer_frames_skipped_total", "counter",
             "Frames a viewer's encoder skipped because a newer one had arrived (summed over viewers).",
             [({}, stats["viewer_skipped"])])
    refused = stats.get("refused") or {}
    w.metric("puppetcam_webrtc_refused_total", "counter", "Requests refused, by HTTP status (bad offer, token, limits).",
             [({"status": str(code)}, n) for code, n in sorted(refused.items())] or [({"status": "none"}, 0)])
    if stages:
        w.metric("puppetcam_stage_fps", "gauge", "Frames per second of each pipeline stage.",
                 [({"stage": name}, snap.get("fps", 0.0)) for name, snap in stages.items()])
        w.metric("puppetcam_stage_dropped_total", "counter", "Frames dropped at each pipeline stage.",
                 [({"stage": name}, snap.get("dropped", 0)) for name, snap in stages.items()])
        w.metric("puppetcam_stage_errors_total", "counter", "Errors counted at each pipeline stage.",
                 [({"stage": name}, snap.get("errors", 0)) for name, snap in stages.items()])
    return w.text()
