"""scripts/benchmark.py: each kind of measurement writes its own report by default."""

from __future__ import annotations

from argparse import Namespace

from src.bench.benchmark import default_json


def _args(**kw: object) -> Namespace:
    base = dict(lipsync=False, vowels=False, auto_tune=False, unet=False, output=None, viewers=1, audio=None, audio_only=False)
    return Namespace(**{**base, **kw})


def test_a_partial_run_never_overwrites_another_figures_report() -> None:
    kinds = {
        "benchmark": _args(),
        "audio_latency": _args(audio="mic", audio_only=True),
        "render_speed": _args(audio="speech", audio_only=True),
        "lipsync": _args(lipsync=True),
        "vowels": _args(vowels=True),
        "unet": _args(unet=True),
        "autotune": _args(auto_tune=True),
        "webrtc_4": _args(output="webrtc", viewers=4),
        "vcam": _args(output="vcam"),
        "churn": _args(output="churn"),
    }
    for name, args in kinds.items():
        assert default_json(args).name == f"{name}.json"
    # the audio figure measured together with the video ones belongs to the full report
    assert default_json(_args(audio="mic")).name == "benchmark.json"
