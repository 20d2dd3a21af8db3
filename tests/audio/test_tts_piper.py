"""The Piper engine: no Piper voice exists on this machine, so the model-running path is checked with a small
ONNX model that has Piper's tensor names and shapes (its 'audio' is the phoneme ids, so the test can read them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.audio.tts import synthesize
from src.core.config import AppConfig
from src.core.errors import ModelError


def _fake_piper(path: Path, id_map: dict[str, list[int]]) -> Path:
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("input", TensorProto.INT64, [1, None])
    lengths = helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1])
    scales = helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, None])
    nodes = [
        helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k", TensorProto.FLOAT, [], [0.01])),
        helper.make_node("Mul", ["f", "k"], ["g"]),
        helper.make_node("ReduceSum", ["scales"], ["s"], keepdims=0),
        helper.make_node("Mul", ["g", "s"], ["h"]),  # scales reach the output: 0.667 + 1 + 0.8
        helper.make_node("Unsqueeze", ["h", "axes"], ["output"]),
        helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])),
        helper.make_node("Identity", ["input_lengths"], ["unused"]),
    ]
    nodes = [nodes[-2]] + nodes[:-2] + [nodes[-1]]
    graph = helper.make_graph(nodes, "fake_piper", [inp, lengths, scales], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    meta = {"audio": {"sample_rate": 22050}, "espeak": {"voice": "de"}, "phoneme_id_map": id_map,
            "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}}
    Path(str(path) + ".json").write_text(json.dumps(meta))
    return path


def test_piper_runs_a_voice_model_with_piper_tensors(tmp_path: Path) -> None:
    id_map = {"_": [0], "^": [1], "$": [2], " ": [3], "ɡ": [10], "uː": [11], "t": [12], "n": [13], "a": [14], "ː": [15],
              "ˈ": [16], "ə": [17], "u": [18]}
    model = _fake_piper(tmp_path / "de_fake.onnx", id_map)
    cfg = AppConfig.model_validate({"audio": {"tts": {"engine": "piper", "piper_model": str(model)}}})
    utt = synthesize("gut", "de", engine="piper", config=cfg)
    assert utt.sample_rate_hz == 22050 and utt.pcm.dtype == np.float32
    ids = np.round(utt.pcm / (0.01 * (0.667 + 1.0 + 0.8))).astype(int).tolist()
    assert ids[:2] == [1, 0] and ids[-1] == 2  # ^ _ ... $
    assert ids[1:-1:2] == [0] * len(ids[1:-1:2])  # a pad after every phoneme
    assert 10 in ids and 12 in ids  # ɡ and t of 'gut' from espeak's phonemes
    assert utt.phonemes == () and [w.text for w in utt.words] == ["gut"]


def test_piper_model_errors_name_the_file(tmp_path: Path) -> None:
    onnx_only = tmp_path / "lonely.onnx"
    onnx_only.write_bytes(b"not a model")
    cfg = AppConfig.model_validate({"audio": {"tts": {"engine": "piper", "piper_model": str(onnx_only)}}})
    with pytest.raises(ModelError, match="lonely.onnx.json is missing"):
        synthesize("hi", engine="piper", config=cfg)
    Path(str(onnx_only) + ".json").write_text(json.dumps({"audio": {"sample_rate": 22050}, "phoneme_id_map": {}}))
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        synthesize("hi", engine="piper", config=cfg)
