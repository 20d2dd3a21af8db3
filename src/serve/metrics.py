"""`/metrics` of the server: Prometheus text (sessions by state, per-session fps, latency, drops,
TTS queue length, refused sessions, batch sizes formed)."""

from __future__ import annotations

from typing import Any

from src.output.webrtc.prometheus import CONTENT_TYPE, _Writer

__all__ = ["CONTENT_TYPE", "render"]


def render(infos: list[dict[str, Any]], refused: dict[str, int], created: int, ended: dict[str, int],
           batches: dict[str, dict[int, int]] | None = None) -> str:
    w = _Writer()
    states: dict[str, int] = {}
    for i in infos:
        states[i["state"]] = states.get(i["state"], 0) + 1
    w.metric("puppetcam_serve_sessions", "gauge", "Sessions by state.",
             [({"state": k}, v) for k, v in sorted(states.items())] or [({"state": "running"}, 0)])
    w.metric("puppetcam_serve_sessions_created_total", "counter", "Sessions created.", [({}, created)])
    w.metric("puppetcam_serve_sessions_ended_total", "counter", "Sessions ended, by why.",
             [({"reason": k}, v) for k, v in sorted(ended.items())])
    w.metric("puppetcam_serve_sessions_refused_total", "counter", "Sessions refused with 503, by why.",
             [({"reason": k}, v) for k, v in sorted(refused.items())])

    def per(name: str, kind: str, help_text: str, key: Any) -> None:
        samples = []
        for i in infos:
            v = key(i)
            if v is not None:
                samples.append(({"session": i["id"]}, float(v)))
        w.metric(name, kind, help_text, samples)

    per("puppetcam_serve_session_fps", "gauge", "Frames per second delivered to the session's output.", lambda i: i["fps"])
    per("puppetcam_serve_session_latency_p50_ms", "gauge", "Capture-to-output latency, median.", lambda i: i["latency_ms"]["p50"])
    per("puppetcam_serve_session_latency_p95_ms", "gauge", "Capture-to-output latency, 95th percentile.",
        lambda i: i["latency_ms"]["p95"])
    per("puppetcam_serve_session_drops_total", "counter", "Frames dropped between the session's stages.", lambda i: i["drops"])
    per("puppetcam_serve_session_viewers", "gauge", "Connected peers (viewers and studio).", lambda i: i["viewers"])
    per("puppetcam_serve_session_tts_queue", "gauge", "Utterances waiting or playing.", lambda i: i["tts_queue"])
    per("puppetcam_serve_session_cpu_ms_per_frame", "gauge", "Busy time of the session's stages per frame.",
        lambda i: i["cpu_ms_per_frame"])
    samples: list[tuple[dict[str, str], float]] = []
    for animator, sizes in sorted((batches or {}).items()):
        for size, count in sorted(sizes.items()):
            samples.append(({"animator": animator, "size": str(size)}, count))
    w.metric("puppetcam_serve_batches_total", "counter", "Cross-session model batches formed, by size.", samples)
    return w.text()
