"""Piper voices (a VITS ONNX model plus its `.onnx.json`) run with onnxruntime; phonemes from eSpeak NG.

Only used when `audio.tts.piper_model` points at a voice model file: nothing is
downloaded. Standard Piper exports give audio but no phoneme durations, so an
utterance from Piper carries no phoneme events (the mouth then follows the sound,
the language-independent method) and one caption cue per sentence-long text.
No Piper voice model exists on this project's machine: the model-running path is
tested with a small ONNX model built with Piper's tensor names.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import numpy as np

from src.audio.tts import espeak
from src.audio.tts.base import TTS_ENGINES, TtsError, Utterance, WordEvent, check_text
from src.core.errors import ModelError

PHONEME_MODE_IPA = 0x02
TEXT_MODE_UTF8 = 1


def _phonemize(text: str, voice: str) -> list[str]:
    """IPA phonemes of `text`, clause by clause (espeak_TextToPhonemes), separated by spaces as Piper expects."""
    with espeak._LOCK:
        lib = espeak._library()
        lib.lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.select(voice)
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        parts: list[str] = []
        while ptr.value:
            out = lib.lib.espeak_TextToPhonemes(ctypes.byref(ptr), TEXT_MODE_UTF8, PHONEME_MODE_IPA)
            if out:
                parts.append(out.decode("utf-8", "ignore"))
    return list(" ".join(parts))


class PiperEngine:
    name = "piper"

    def __init__(self, model_path: str | Path, length_scale: float | None = None) -> None:
        path = Path(model_path).expanduser()
        cfg_path = Path(str(path) + ".json")
        if not path.is_file():
            raise ModelError(f"audio.tts.piper_model {str(path)!r}: no such file; "
                             "point it at a Piper voice model (.onnx with its .onnx.json beside it)")
        if not cfg_path.is_file():
            raise ModelError(f"audio.tts.piper_model {str(path)!r}: {cfg_path.name} is missing beside it; "
                             "Piper voices come as a pair of files")
        try:
            self.meta: dict[str, Any] = json.loads(cfg_path.read_text())
            self.id_map: dict[str, list[int]] = self.meta["phoneme_id_map"]
            self.sample_rate_hz = int(self.meta["audio"]["sample_rate"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"audio.tts.piper_model: {cfg_path} is not a Piper voice config ({exc})") from None
        inf = self.meta.get("inference", {})
        self.scales = np.array([inf.get("noise_scale", 0.667), length_scale or inf.get("length_scale", 1.0),
                                inf.get("noise_w", 0.8)], np.float32)
        self.voice_name = str(self.meta.get("espeak", {}).get("voice", "en-us"))
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            raise ModelError(f"audio.tts.piper_model {str(path)!r}: not a loadable ONNX model ({exc})") from None
        names = {i.name for i in self.session.get_inputs()}
        if not {"input", "input_lengths", "scales"} <= names:
            raise ModelError(f"audio.tts.piper_model {str(path)!r}: inputs {sorted(names)} are not Piper's (input, input_lengths, scales)")
        self._has_sid = "sid" in names

    def phoneme_ids(self, phonemes: list[str]) -> list[int]:
        pad = self.id_map.get("_", [0])
        ids = list(self.id_map.get("^", [1])) + list(pad)
        for p in phonemes:
            if p in self.id_map:
                ids += list(self.id_map[p]) + list(pad)
        return ids + list(self.id_map.get("$", [2]))

    def synthesize(self, text: str, voice: str = "") -> Utterance:
        text = check_text(text)
        voice = voice or self.voice_name
        ids = self.phoneme_ids(_phonemize(text, voice))
        feeds: dict[str, np.ndarray] = {
            "input": np.array([ids], np.int64),
            "input_lengths": np.array([len(ids)], np.int64),
            "scales": self.scales,
        }
        if self._has_sid:
            feeds["sid"] = np.array([0], np.int64)
        audio = np.asarray(self.session.run(None, feeds)[0], np.float32).reshape(-1)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        pcm = (audio / peak * 0.9 if peak > 1.0 else audio).astype(np.float32)
        words = (WordEvent(0.0, len(pcm) / self.sample_rate_hz, text.strip()),)
        return Utterance(pcm, self.sample_rate_hz, text, voice, (), words)

    def voices(self) -> list[str]:
        return [self.voice_name]


def _make(config: Any = None) -> PiperEngine:
    model = getattr(getattr(getattr(config, "audio", None), "tts", None), "piper_model", None)
    if not model:
        raise TtsError("tts engine piper: set audio.tts.piper_model to a Piper voice model file (.onnx); none is bundled")
    return PiperEngine(model)


TTS_ENGINES.register("piper", _make)
