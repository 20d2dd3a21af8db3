"""eSpeak NG through ctypes on the library and voice data of the `espeakng-loader` wheel (no downloads).

The library is synthesised in its synchronous mode: a callback receives 16-bit
samples and, with them, events stamped with their sample position: one per
phoneme (IPA symbols, `espeakINITIALIZE_PHONEME_EVENTS | _PHONEME_IPA`) and one
per word (its character span in the text). The library keeps global state, so
every call holds one process-wide lock.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Any

import numpy as np

from src.audio.tts.base import TTS_ENGINES, PhonemeEvent, TtsError, Utterance, WordEvent, check_text

log = logging.getLogger(__name__)

AUDIO_OUTPUT_SYNCHRONOUS = 2
INIT_PHONEME_EVENTS = 0x0001
INIT_PHONEME_IPA = 0x0002
INIT_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
POS_CHARACTER = 1
EV_WORD, EV_SENTENCE, EV_END, EV_MSG_TERMINATED, EV_PHONEME = 1, 2, 5, 6, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.POINTER(ctypes.c_char)),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_LOCK = threading.Lock()


class _Library:
    """The loaded, initialised libespeak-ng (one per process)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - it is in requirements.txt
            raise TtsError("tts engine espeak: the espeakng-loader package is missing; pip install -r requirements.txt") from exc
        lib = ctypes.CDLL(str(espeakng_loader.get_library_path()))
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        data = str(espeakng_loader.get_data_path())
        self.data_path = data
        # espeak_Initialize takes the folder that holds espeak-ng-data
        parent = data[: -len("/espeak-ng-data")] if data.endswith("/espeak-ng-data") else data
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, parent.encode(), INIT_PHONEME_EVENTS | INIT_PHONEME_IPA | INIT_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"libespeak-ng failed to initialise with data at {data} (status {rate})")
        self.lib = lib
        self.sample_rate_hz = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, str]] = []
        self._callback = _CALLBACK(self._on_synth)  # kept referenced: the library holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.voice_names = self._list_voices()
        # keep only the languages that select a voice (by name, or by language for 'en-gb', 'fr-fr' ...)
        self.voice_names = [v for v in self.voice_names if lib.espeak_SetVoiceByName(v.encode()) == 0 or self._set_language(v)]
        # the voice changes above queue sample-rate events that crowd the first message's event list (its first
        # word event went missing): speak one throw-away message to flush them
        self.synth("a", "en-us")

    def _on_synth(self, wav: Any, n: int, events: Any) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while True:
            ev = events[i]
            if ev.type == 0:  # espeakEVENT_LIST_TERMINATED
                break
            sym = ""
            if ev.type == EV_PHONEME:
                sym = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "ignore")
            self._events.append((ev.type, ev.sample, ev.text_position, ev.length, sym))
            i += 1
        return 0

    def _list_voices(self) -> list[str]:
        out: list[str] = []
        self.accepted: set[str] = set()  # languages, voice names and identifiers, lower case
        arr = self.lib.espeak_ListVoices(None)
        i = 0
        while arr[i]:
            v = arr[i].contents
            ident = (v.identifier or b"").decode("utf-8", "ignore")
            lang = ctypes.string_at(ctypes.addressof(v.languages.contents) + 1).decode("utf-8", "ignore") if v.languages else ""
            # a voice whose dictionary is not in the wheel speaks nothing useful (fo, kaa, xex)
            has_dict = os.path.exists(os.path.join(self.data_path, f"{lang.split('-')[0].lower()}_dict"))
            if lang and not ident.startswith("mb/") and has_dict:
                out.append(lang)
                self.accepted |= {lang.lower(), lang.split("-")[0].lower(), ident.lower(),
                                  (v.name or b"").decode("utf-8", "ignore").lower()}
            i += 1
        return sorted(set(out))

    def _set_language(self, language: str) -> bool:
        """Select a voice by language code (names like 'en-gb' or 'fr-fr' are languages, not voice names)."""
        if language.lower() not in self.accepted:
            return False
        spec = _Voice()
        raw = ctypes.create_string_buffer(language.encode())
        spec.languages = ctypes.cast(raw, ctypes.POINTER(ctypes.c_char))
        return self.lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) == 0

    def select(self, voice: str) -> None:
        """Make `voice` (a language code, voice name or identifier, optionally with a +variant) current."""
        # libespeak-ng matches any name loosely once voices are listed ('klingon' selected a voice): check first
        if not voice or voice.split("+")[0].lower() not in self.accepted:
            raise _unknown_voice(voice, self.voice_names)
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0 and not self._set_language(voice):
            raise _unknown_voice(voice, self.voice_names)

    def synth(self, text: str, voice: str) -> tuple[np.ndarray, list[tuple[int, int, int, int, str]]]:
        self.select(voice)
        self._chunks, self._events = [], []
        raw = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(raw, len(raw))
        status = self.lib.espeak_Synth(buf, len(raw), 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm, self._events


def _unknown_voice(voice: str, known: list[str]) -> TtsError:
    common = [v for v in ("en-us", "en-gb", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "ja", "cmn") if v in known]
    return TtsError(f"voice {voice!r}: unknown to espeak; known voices include {', '.join(common)} "
                    f"({len(known)} in all, see list_voices())")


_LIB: _Library | None = None


def _library() -> _Library:
    global _LIB
    if _LIB is None:
        _LIB = _Library()
    return _LIB


def _events_to_timings(text: str, events: list[tuple[int, int, int, int, str]], n_samples: int,
                       rate: int) -> tuple[tuple[PhonemeEvent, ...], tuple[WordEvent, ...]]:
    """Phonemes end where the next phoneme (or the end) starts; a word spans from its event to the end of
    its last sounding phoneme before the next word."""
    end_sample = n_samples
    for typ, sample, *_ in events:
        if typ in (EV_END, EV_MSG_TERMINATED) and sample > 0:
            end_sample = min(n_samples, max(sample, 0)) or n_samples
    # '(en)' marks a switch of language (a Latin word in a Japanese text), not a phoneme
    ph_raw = [(max(0, s), sym) for typ, s, _, _, sym in events if typ == EV_PHONEME and not sym.startswith("(")]
    phonemes: list[PhonemeEvent] = []
    for k, (s, sym) in enumerate(ph_raw):
        e: float = ph_raw[k + 1][0] if k + 1 < len(ph_raw) else max(end_sample, s)
        if e > s:
            phonemes.append(PhonemeEvent(s / rate, e / rate, sym))
    chars = text  # positions count characters, 1-based
    w_raw = [(max(0, s), pos, length) for typ, s, pos, length, _ in events if typ == EV_WORD]
    words: list[WordEvent] = []
    for k, (s, pos, length) in enumerate(w_raw):
        nxt = w_raw[k + 1][0] if k + 1 < len(w_raw) else end_sample
        inside = [p for p in phonemes if s / rate <= p.start_s < nxt / rate and is_sounding(p.phoneme)]
        e = max(p.end_s for p in inside) if inside else nxt / rate
        # the word's text runs to the next word's position: its punctuation stays with it (captions break after
        # a sentence), and scripts without spaces (Chinese) keep every character even where lengths are off
        a = max(0, pos - 1)
        b = max(a + max(length, 0), w_raw[k + 1][1] - 1) if k + 1 < len(w_raw) else len(chars)
        word = chars[a:b].strip()
        # a word event may come at the pause before the word, or before the last phoneme of the previous word
        start = max(min(p.start_s for p in inside) if inside else s / rate, words[-1].end_s if words else 0.0)
        if word:
            words.append(WordEvent(start, max(e, start), word))
    return tuple(phonemes), tuple(words)


def is_sounding(symbol: str) -> bool:
    """False for espeak's pause symbols ('_', '_:', '_!' ...) and empty symbols."""
    s = symbol.strip()
    return bool(s) and not s.startswith("_")


class EspeakEngine:
    name = "espeak"

    def synthesize(self, text: str, voice: str = "en-us") -> Utterance:
        text = check_text(text)
        with _LOCK:
            lib = _library()
            pcm16, events = lib.synth(text, voice)
            rate = lib.sample_rate_hz
        phonemes, words = _events_to_timings(text, events, len(pcm16), rate)
        pcm = (pcm16.astype(np.float32) / 32768.0).clip(-1.0, 1.0)
        return Utterance(pcm, rate, text, voice, phonemes, words)

    def voices(self) -> list[str]:
        with _LOCK:
            return list(_library().voice_names)


def _make(config: Any = None) -> EspeakEngine:
    return EspeakEngine()


TTS_ENGINES.register("espeak", _make)
