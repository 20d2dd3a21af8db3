"""Lip sync in several languages, as written to mp4 (`scripts/benchmark.py --lipsync`).

Five phrases per language from espeak-ng (the bundled TTS), written at 16, 44.1 and
48 kHz (48 kHz as 24-bit), mono and stereo, rendered with the default render path
(`audio.language: auto`) onto a portrait whose mouth rests closed, and the mouth
re-detected in the mp4 as written. Per file:

* `lag_ms`: the best-alignment lag between the speech envelope (20 ms RMS, 1 ms steps) and the
  mouth's departure from rest as displayed (each frame held for its 1/fps), over the whole file;
  positive = the mouth trails the sound. `corr` is the correlation at that lag, `lag_peak_ms` the lags within
  0.005 of it (the lag is their centre; a wide peak is a loose estimate).
* `onset_errors_ms`: per phrase, the first frame whose departure from rest reaches 10 % of the
  speaking range, minus the speech onset (frame k is shown from k / fps).
* `close_delays_ms`: per phrase, the first frame back within 10 % of rest after the speech ends.

    from src.bench.languages import measure_languages
"""

from __future__ import annotations

import functools
import math
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.signal import resample_poly

from src.audio.tts import synthesize
from src.core.config import AppConfig

# Five phrases per language: the lag of one phrase scatters by tens of ms around the file's (the envelope and the
# opening differ in shape, not only in time), and over two phrases the lag of pt moved +41 ms when its shapes
# moved 24 ms earlier; over five the lookahead moved pt -8.5 ms, the others -1.5 to -15.5 ms (fr +9, inside its
# 44-50 ms wide peak), and the six formats of a language agree within 2 ms.
SENTENCES: dict[str, tuple[str, ...]] = {
    "en-us": ("Hello there, how are you today?", "Please call Stella and bring the books.",
              "The weather was cold, so we stayed inside and read all afternoon.", "My brother works at the hospital near the station.",
              "Could you tell me where the nearest bank is?"),
    "de": ("Guten Morgen, wie geht es Ihnen heute?", "Bitte bringen Sie mir das Buch vom Tisch.",
           "Das Wetter war kalt, also blieben wir den ganzen Nachmittag im Haus.", "Mein Bruder arbeitet im Krankenhaus am Bahnhof.",
           "Können Sie mir sagen, wo die nächste Bank ist?"),
    "fr": ("Bonjour, comment allez-vous aujourd'hui?", "Pouvez-vous me donner le livre sur la table?",
           "Il faisait froid, alors nous sommes restés à la maison tout l'après-midi.", "Mon frère travaille à l'hôpital près de la gare.",
           "Pouvez-vous me dire où se trouve la banque la plus proche?"),
    "es": ("Buenos días, ¿cómo está usted hoy?", "Por favor, tráigame el libro de la mesa.",
           "Hacía frío, así que nos quedamos en casa toda la tarde.", "Mi hermano trabaja en el hospital cerca de la estación.",
           "¿Puede decirme dónde está el banco más cercano?"),
    "it": ("Buongiorno, come sta oggi?", "Per favore, mi porti il libro dal tavolo.",
           "Faceva freddo, quindi siamo rimasti in casa tutto il pomeriggio.", "Mio fratello lavora all'ospedale vicino alla stazione.",
           "Può dirmi dove si trova la banca più vicina?"),
    "pt": ("Bom dia, como vai você hoje?", "Por favor, traga-me o livro da mesa.",
           "Estava frio, então ficamos em casa a tarde toda.", "O meu irmão trabalha no hospital perto da estação.",
           "Pode dizer-me onde fica o banco mais próximo?"),
    "nl": ("Goedemorgen, hoe gaat het met u vandaag?", "Wilt u mij het boek van de tafel geven?",
           "Het was koud, dus we bleven de hele middag binnen.", "Mijn broer werkt in het ziekenhuis bij het station.",
           "Kunt u mij zeggen waar de dichtstbijzijnde bank is?"),
}
FORMATS: tuple[tuple[int, int], ...] = ((16000, 1), (16000, 2), (44100, 1), (44100, 2), (48000, 1), (48000, 2))
LEAD_S, GAP_S, TAIL_S = 0.6, 0.8, 0.6
CLIP_FRAME = 97  # the shared clip's frame with closed lips, head near frontal (re-detected lip gap 0)
REST_PAUSE_S = 0.35  # audio.visemes.relax_pause_ms: pauses this long close the mouth
GOALS = {"abs_lag_ms": 20.0, "onset_median_ms": 20.0, "close_ms": 150.0}


def closed_mouth_portrait(clip: Path, out: Path, frame_index: int = CLIP_FRAME) -> Path:
    """A portrait with its lips closed at rest: one frame of the shared clip, scaled 2x (352x288)."""
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read frame {frame_index} of {clip}")
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.resize(frame, (frame.shape[1] * 2, frame.shape[0] * 2), interpolation=cv2.INTER_LANCZOS4))
    return out


@functools.cache
def speech(lang: str, n_phrases: int | None = None) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Lead silence, phrase, gap, phrase ... (the first `n_phrases`, default all), tail, at the TTS rate; and the
    phrases' true (start, end) in seconds (first to last sample above -50 dBFS in 5 ms hops). Made once per
    process: libespeak-ng's output varies by a few ms from call to call, and every mode of a language must
    measure the same sound."""
    parts: list[np.ndarray] = []
    rate = 0
    for text in SENTENCES[lang][:n_phrases]:
        u = synthesize(text, lang)
        rate = u.sample_rate_hz
        nz = np.flatnonzero(np.abs(u.pcm) > 1e-3)
        parts.append(u.pcm[nz[0] : nz[-1] + 1])
    out = [np.zeros(int(LEAD_S * rate), np.float32)]
    regions = []
    t = LEAD_S
    for i, p in enumerate(parts):
        out.append(p)
        hop = int(0.005 * rate)
        n = len(p) // hop
        db = 20 * np.log10(np.sqrt(np.mean(p[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)) + 1e-12)
        loud = np.flatnonzero(db > -50.0)
        regions.append((t + loud[0] * hop / rate, t + (loud[-1] + 1) * hop / rate))
        t += len(p) / rate
        gap = GAP_S if i + 1 < len(parts) else TAIL_S
        out.append(np.zeros(int(gap * rate), np.float32))
        t += int(gap * rate) / rate
    return np.concatenate(out), rate, regions


def write_format(path: Path, pcm: np.ndarray, rate: int, to_rate: int, channels: int) -> Path:
    """`pcm` resampled to `to_rate`, 24-bit at 48 kHz else 16-bit, `channels` (stereo: the right channel 3 dB lower)."""
    g = math.gcd(rate, to_rate)
    x = resample_poly(pcm.astype(np.float64), to_rate // g, rate // g) if to_rate != rate else pcm.astype(np.float64)
    x = np.clip(x, -1.0, 1.0)
    if channels == 2:
        x = np.stack([x, x * 10 ** (-3 / 20)], axis=1)
    width = 3 if to_rate == 48000 else 2
    ints = np.round(x * (2 ** (8 * width - 1) - 1)).astype("<i4").reshape(-1)
    raw = ints.astype("<i2").tobytes() if width == 2 else b"".join(v.to_bytes(3, "little", signed=True) for v in ints.tolist())
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(to_rate)
        w.writeframes(raw)
    return path


def envelope_ms(pcm: np.ndarray, rate: int, window_ms: float = 20.0) -> np.ndarray:
    """RMS over `window_ms` centred windows, one value per millisecond."""
    sq = np.square(pcm.astype(np.float64))
    w = max(1, int(rate * window_ms / 1000.0))
    c = np.concatenate([[0.0], np.cumsum(sq)])
    n_ms = int(len(pcm) * 1000 / rate)
    centre = (np.arange(n_ms) * rate / 1000.0).astype(int)
    a = np.clip(centre - w // 2, 0, len(pcm))
    b = np.clip(centre + w // 2, 0, len(pcm))
    return np.sqrt((c[b] - c[a]) / np.maximum(b - a, 1))


def displayed_ms(values: np.ndarray, fps: float, n_ms: int) -> np.ndarray:
    """Per-frame values as displayed: frame k held from k / fps to (k + 1) / fps, one value per millisecond."""
    idx = np.clip((np.arange(n_ms) / 1000.0 * fps).astype(int), 0, len(values) - 1)
    return np.asarray(values, np.float64)[idx]


def best_lag(env: np.ndarray, mouth: np.ndarray, max_ms: int = 250) -> tuple[float, float]:
    """(lag in ms, correlation): the shift of `mouth` later than `env` that correlates best (positive: mouth late).

    The correlation peak is broad (tens of ms within 0.01 of its top), so the lag is the centre of the lags whose
    correlation is within 0.005 of the best: the argmax alone moved by 15 ms between two renders of one file."""
    lag, corr, _, _ = lag_peak(env, mouth, max_ms)
    return lag, corr


def lag_peak(env: np.ndarray, mouth: np.ndarray, max_ms: int = 250) -> tuple[float, float, int, int]:
    """best_lag's (lag, correlation) and the first and last lag (ms) of the peak it is the centre of."""
    n = min(len(env), len(mouth))
    env, mouth = env[:n], mouth[:n]
    lags = np.arange(-max_ms, max_ms + 1)
    rs = np.full(len(lags), -2.0)
    for i, lag in enumerate(lags):
        if lag >= 0:
            a, b = env[: n - lag], mouth[lag:]
        else:
            a, b = env[-lag:], mouth[: n + lag]
        if a.std() > 0 and b.std() > 0:
            rs[i] = float(np.corrcoef(a, b)[0, 1])
    top = int(np.argmax(rs))
    lo = hi = top
    while lo > 0 and rs[lo - 1] >= rs[top] - 0.005:
        lo -= 1
    while hi < len(rs) - 1 and rs[hi + 1] >= rs[top] - 0.005:
        hi += 1
    return round(float(lags[lo] + lags[hi]) / 2.0, 1), float(rs[top]), int(lags[lo]), int(lags[hi])


def phrase_timing(dep: np.ndarray, fps: float, regions: list[tuple[float, float]], frac: float = 0.1) -> dict[str, list[float]]:
    """Onset error and close delay per phrase of a per-frame departure-from-rest series (frame k shown at k / fps)."""
    rng = float(np.nanmax(dep)) if dep.size else 0.0
    thr = frac * rng
    t = np.arange(len(dep)) / fps
    onsets, closes = [], []
    for i, (s, e) in enumerate(regions):
        # only phrases after / before a pause the mouth closes in (shorter pauses hold or relax it, by design)
        if i == 0 or s - regions[i - 1][1] >= REST_PAUSE_S:
            win = np.flatnonzero((t >= s - 0.15) & (t <= e))
            hit = win[dep[win] >= thr]
            onsets.append(round(1000.0 * (t[hit[0]] - s), 1) if len(hit) else float("inf"))
        if i + 1 == len(regions) or regions[i + 1][0] - e >= REST_PAUSE_S:
            after = np.flatnonzero((t >= e) & (dep <= thr))
            closes.append(round(1000.0 * (t[after[0]] - e), 1) if len(after) else float("inf"))
    return {"onset_errors_ms": onsets, "close_delays_ms": closes}


def measure_file(mp4_opening: np.ndarray, fps: float, pcm16k: np.ndarray, regions: list[tuple[float, float]]) -> dict[str, Any]:
    """The figures of one rendered file; the mouth at rest is its median before the first phrase (or, when the
    speech starts at once, as TTS output does, after the last one)."""
    before = mp4_opening[: int((regions[0][0] - 0.15) * fps)] if regions[0][0] > 0.25 else mp4_opening[:0]
    after = mp4_opening[int((regions[-1][1] + 0.2) * fps) :]
    rest = float(np.nanmedian(before if before.size else after if after.size else mp4_opening[:1]))
    dep = np.abs(np.nan_to_num(mp4_opening - rest, nan=0.0))
    env = envelope_ms(pcm16k, 16000)
    lag, corr, lo, hi = lag_peak(env, displayed_ms(dep, fps, len(env)))
    out: dict[str, Any] = {"lag_ms": lag, "corr": round(corr, 3), "lag_peak_ms": [lo, hi], **phrase_timing(dep, fps, regions)}
    out["faces_found"] = round(float(np.mean(~np.isnan(mp4_opening))), 3)
    return out


def summarise(files: list[dict[str, Any]]) -> dict[str, Any]:
    lags = [f["lag_ms"] for f in files]
    onsets = [x for f in files for x in f["onset_errors_ms"] if math.isfinite(x)]
    closes = [x for f in files for x in f["close_delays_ms"]]
    s: dict[str, Any] = {
        "lag_ms_median": float(np.median(lags)), "lag_ms_max_abs": float(np.max(np.abs(lags))),
        "corr_median": round(float(np.median([f["corr"] for f in files])), 3),
        "lag_peak_width_ms_median": float(np.median([f["lag_peak_ms"][1] - f["lag_peak_ms"][0] for f in files])),
        "onset_median_ms": round(float(np.median(onsets)), 1) if onsets else float("inf"),
        "onset_misses": sum(1 for f in files for x in f["onset_errors_ms"] if not math.isfinite(x)),
        "close_max_ms": float(np.max(closes)) if closes else 0.0,
        "methods": sorted({f["method"] for f in files}),
    }
    s["meets_goals"] = bool(s["lag_ms_max_abs"] <= GOALS["abs_lag_ms"] and abs(s["onset_median_ms"]) <= GOALS["onset_median_ms"]
                            and s["close_max_ms"] <= GOALS["close_ms"] and s["onset_misses"] == 0)
    return s


def measure_languages(config: AppConfig, source: str,
                      render_talking: Callable[[AppConfig, str, Path, Path], dict[str, Any]],
                      mp4_opening: Callable[[Path], tuple[np.ndarray, float]],
                      languages: list[str] | None = None, formats: tuple[tuple[int, int], ...] = FORMATS) -> dict[str, Any]:
    """Render every language in every format with `render_talking` and measure the re-detected mouth."""
    languages = languages or list(SENTENCES)
    out: dict[str, Any] = {"portrait": source, "goals": GOALS, "languages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for lang in languages:
            pcm, rate, regions = speech(lang)
            g = math.gcd(rate, 16000)
            pcm16k = resample_poly(pcm.astype(np.float64), 16000 // g, rate // g)
            files = []
            for to_rate, ch in formats:
                wav = write_format(d / f"{lang}_{to_rate}_{ch}.wav", pcm, rate, to_rate, ch)
                mp4 = d / f"{lang}_{to_rate}_{ch}.mp4"
                r = render_talking(config, source, wav, mp4)
                opening, fps = mp4_opening(mp4)
                f = {"rate_hz": to_rate, "channels": ch, "bits": 24 if to_rate == 48000 else 16, "method": r["method"],
                     **measure_file(opening, fps, pcm16k, regions)}
                files.append(f)
            out["languages"][lang] = {"phrases": list(SENTENCES[lang]), "summary": summarise(files), "files": files}
    out["all_meet_goals"] = all(v["summary"]["meets_goals"] for v in out["languages"].values())
    return out


def energy_regions(pcm: np.ndarray, rate: int, min_gap_s: float = 0.25, threshold_dbfs: float = -50.0) -> list[tuple[float, float]]:
    """Where a clean signal sounds: 5 ms hops above `threshold_dbfs`, gaps under `min_gap_s` bridged."""
    hop = int(0.005 * rate)
    n = len(pcm) // hop
    db = 20 * np.log10(np.sqrt(np.mean(pcm[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)) + 1e-12)
    out: list[list[float]] = []
    for i in np.flatnonzero(db > threshold_dbfs):
        t = i * hop / rate
        if out and t - out[-1][1] < min_gap_s:
            out[-1][1] = t + hop / rate
        else:
            out.append([t, t + hop / rate])
    return [(a, b) for a, b in out]


def measure_tts(lang: str, source: str, workdir: Path, mp4_opening: Callable[[Path], tuple[np.ndarray, float]],
                overrides: list[str]) -> dict[str, Any]:
    """`main.py render --text ... --voice LANG` as a user runs it (mouth from the TTS phonemes), measured like the files."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]  # the project root, where main.py is
    text = " ".join(SENTENCES[lang])
    mp4 = workdir / f"tts_{lang}.mp4"
    cmd = [sys.executable, str(root / "main.py"), "render", "--source", source, "--text", text, "--voice", lang,
           "--output", str(mp4)]
    for o in overrides:
        cmd += ["--set", o]
    subprocess.run(cmd, check=True, capture_output=True, cwd=root)
    from src.audio import decode_audio

    pcm16k = decode_audio(mp4).astype(np.float64)  # the speech as written into the mp4 (AAC, 16 kHz mono here)
    regions = energy_regions(pcm16k, 16000, min_gap_s=REST_PAUSE_S)
    opening, fps = mp4_opening(mp4)
    r = {"method": "tts", "vtt": mp4.with_suffix(".vtt").is_file(), **measure_file(opening, fps, pcm16k, regions)}
    return r


def live_vs_phoneme_timing(lang: str, config: AppConfig, workdir: Path) -> dict[str, Any]:
    """The live method's mouth against a mouth timed by espeak-ng's own phoneme events, on the same audio (the
    phrases spoken as one text), as tracks at 1 ms (no render): a timing check that does not assume the mouth
    opens as wide as the sound is loud, which the envelope lag does. Also each mouth's envelope lag."""
    from src.audio.lipsync.track import file_mouth_track
    from src.audio.tts.mouth import utterance_mouth_track

    u = synthesize(" ".join(SENTENCES[lang]), lang)
    wav = write_format(workdir / f"timing_{lang}.wav", u.pcm, u.sample_rate_hz, 16000, 1)
    g = math.gcd(u.sample_rate_hz, 16000)
    x = resample_poly(u.pcm.astype(np.float64), 16000 // g, u.sample_rate_hz // g)
    live = config.model_copy(deep=True)
    live.audio.visemes.method = "live"
    timed = utterance_mouth_track(u, 1000.0, config).values[:, 0]
    mouth = file_mouth_track(wav, 1000.0, live).values[:, 0]
    env = envelope_ms(x, 16000)
    n = min(len(timed), len(mouth), len(env))
    lag, corr, lo, hi = lag_peak(timed[:n], mouth[:n])
    return {"live_vs_phoneme_timed_ms": lag, "corr": round(corr, 3), "lag_peak_ms": [lo, hi],
            "envelope_lag_ms": {"phoneme_timed": lag_peak(env[:n], timed[:n])[0], "live": lag_peak(env[:n], mouth[:n])[0]}}


def measure_language_figures(config: AppConfig, clip: Path,
                             render_talking: Callable[[AppConfig, str, Path, Path], dict[str, Any]],
                             mp4_opening: Callable[[Path], tuple[np.ndarray, float]],
                             languages: list[str] | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Every figure of the multi-language lip sync: `auto` (the default), the language declared
    (`audio.language: de` ...), the live method with and without its offline lookahead, and render --text."""
    from src.audio.lipsync import track as track_module

    languages = languages or list(SENTENCES)
    workdir = workdir or Path(tempfile.mkdtemp())
    portrait = str(closed_mouth_portrait(clip, workdir / "closed_mouth_portrait.png"))
    out: dict[str, Any] = {"portrait": f"{clip.name} frame {CLIP_FRAME}, lips closed, scaled 2x"}
    out["auto"] = measure_languages(config, portrait, render_talking, mp4_opening, languages)
    declared: dict[str, Any] = {"languages": {}, "formats": "16 kHz mono (auto covers the formats)"}
    one = ((16000, 1),)
    for lang in languages:
        code = "en" if lang.startswith("en") else lang
        cfg = config.model_copy(deep=True)
        cfg.audio.language = code
        declared["languages"].update(measure_languages(cfg, portrait, render_talking, mp4_opening, [lang], one)["languages"])
    declared["all_meet_goals"] = all(v["summary"]["meets_goals"] for v in declared["languages"].values())
    out["declared"] = declared
    live = config.model_copy(deep=True)
    live.audio.visemes.method = "live"
    out["live_with_lookahead"] = measure_languages(live, portrait, render_talking, mp4_opening, languages, one)
    original = track_module.live_method_delay_s
    track_module.live_method_delay_s = lambda acfg: 0.0  # the same renders before the compensation
    try:
        out["live_without_lookahead"] = measure_languages(live, portrait, render_talking, mp4_opening, languages, one)
    finally:
        track_module.live_method_delay_s = original
    overrides = [f"idle.sway_deg={config.idle.sway_deg}", f"idle.breath_amplitude={config.idle.breath_amplitude}",
                 f"idle.seed={config.idle.seed}", f"animation.output_size_px={config.animation.output_size_px}"]
    tts: dict[str, Any] = {}
    for lang in languages:
        tts[lang] = measure_tts(lang, portrait, workdir, mp4_opening, overrides)
    out["render_text"] = tts
    out["live_vs_phoneme_timing"] = {lang: live_vs_phoneme_timing(lang, config, workdir) for lang in languages}
    return out
