"""scripts/bench_neural.py auto_tune: measures per batch size, picks the largest within budget, writes the override and plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from src.animation.base import AnimationInput, BaseAnimationModel
from src.core.config import AppConfig

ROOT = Path(__file__).resolve().parents[2]


def bench():
    from src.bench import neural as mod
    return mod


def tiny_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Conv", ["image", "w"], ["out"], pads=[1, 1, 1, 1])], "tiny",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, "H", "W"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["B", 8, "H", "W"])],
                              [numpy_helper.from_array(w, "w")])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_auto_tune_model_picks_largest_batch_within_budget(tmp_path: Path) -> None:
    b = bench()
    model = tiny_model(tmp_path / "tiny.onnx")
    res = b.auto_tune(model, sizes=[32, 64], batch_sizes=[1, 2, 4], budget_ms=10_000, config=AppConfig(), seconds=0.05,
                      out_dir=tmp_path / "a")  # fmt: skip
    assert res["batch_size"] == 4
    rows = res["sizes"][64]["rows"]
    assert [r["batch"] for r in rows] == [1, 2, 4] and all(r["p95_ms"] >= r["p50_ms"] > 0 and r["fps"] > 0 for r in rows)
    assert yaml.safe_load(Path(res["override_path"]).read_text()) == {"pipeline": {"batch_size": 4}}
    assert Path(res["plot_path"]).stat().st_size > 1000
    tight = b.auto_tune(model, sizes=[64], batch_sizes=[1, 2, 4], budget_ms=1e-6, config=AppConfig(), seconds=0.05, out_dir=tmp_path / "b",
                        plot=False)  # fmt: skip
    assert tight["batch_size"] == 1 and tight["sizes"][64]["any_fits"] is False


class Sleepy(BaseAnimationModel):
    """A stand-in animator whose batch call costs 5 ms + 5 ms per frame."""

    name = "sleepy"

    def load_model(self) -> None:
        self.loaded = True

    def preprocess_source_image(self, image_path: str | Path) -> None:
        pass

    def animate(self, inp: AnimationInput) -> np.ndarray:
        return self.animate_batch([inp])[0]

    def animate_batch(self, inputs: list[AnimationInput]) -> list[np.ndarray]:
        import time

        time.sleep(0.005 * (1 + len(inputs)))
        return [np.zeros((self.output_size, self.output_size, 3), np.uint8) for _ in inputs]


def test_auto_tune_animator_factory(tmp_path: Path) -> None:
    res = bench().auto_tune(Sleepy, sizes=[128], batch_sizes=[1, 2, 4, 8], budget_ms=33, config=AppConfig(), seconds=0.1,
                            out_dir=tmp_path, plot=False)  # fmt: skip
    rows = res["sizes"][128]["rows"]
    assert rows[0]["fps"] < rows[-1]["fps"]  # batching amortises the fixed cost
    assert 1 <= res["batch_size"] < 8  # 8 frames cost at least 45 ms > the 33 ms budget
