"""`render --text`: speak the text, drive the mouth from its phonemes, caption it (a .vtt beside the video)."""

from __future__ import annotations

import logging
from pathlib import Path

from src.audio.lipsync.track import MouthTrack
from src.audio.tts import synthesize
from src.audio.tts.captions import caption_cues, write_webvtt
from src.audio.tts.mouth import utterance_mouth_track
from src.audio.tts.wav import write_wav
from src.core.config import AppConfig

log = logging.getLogger(__name__)


def speak_to_files(text: str, voice: str | None, config: AppConfig, out_video: Path, wav_path: Path,
                   fps: float) -> tuple[MouthTrack, Path]:
    """Synthesise `text`, write its audio to `wav_path` and its captions to `out_video` with .vtt;
    return the mouth track and the caption path."""
    tcfg = config.audio.tts
    utt = synthesize(text, voice or tcfg.voice, engine=tcfg.engine, config=config)
    write_wav(wav_path, utt.pcm, utt.sample_rate_hz)
    vtt = write_webvtt(out_video.with_suffix(".vtt"), caption_cues(utt.words))
    track = utterance_mouth_track(utt, fps, config)
    log.info("text: %d characters, voice %s (%s): %.2f s of speech, %d phonemes, %d words; mouth shapes by %s; captions %s",
             len(text), utt.voice, tcfg.engine, utt.duration_s, len(utt.phonemes), len(utt.words), track.method, vtt)
    return track, vtt
