"""Voice-driven lip sync: microphone or file in, mouth shapes out.

Live:    AudioDriver("mic" | "mic:DEVICE" | path, config) -> start(), mouth_at(t), stop()
Render:  file_mouth_track(path, fps, config) -> MouthTrack;  AudioFileMux(path) for FileOutput.audio
Audio:   iter_audio_blocks(path), decode_audio(path) (16 kHz mono float32)
Voice:   calibrate_voice(config, ...); CLI pieces in src.audio.cli
Text:    src.audio.tts.synthesize(text, voice) -> Utterance (PCM, phoneme and word timings);
         src.audio.tts.mouth.utterance_mouth_track(utt, fps, config); audio.language: src.audio.language
"""

from src.audio.blocks import AudioBlock, AudioInputError
from src.audio.calibrate import calibrate_voice
from src.audio.driver import AudioDriver, PcmQueue, parse_audio_spec
from src.audio.file_source import decode_audio, iter_audio_blocks, probe_audio
from src.audio.mux import AudioFileMux
from src.audio.track import MouthTrack, file_mouth_track
from src.audio.vowels import VowelTemplates, load_templates

__all__ = [
    "AudioBlock",
    "AudioDriver",
    "AudioFileMux",
    "AudioInputError",
    "MouthTrack",
    "PcmQueue",
    "VowelTemplates",
    "calibrate_voice",
    "decode_audio",
    "file_mouth_track",
    "iter_audio_blocks",
    "load_templates",
    "parse_audio_spec",
    "probe_audio",
]
