"""Voice-driven lip sync: microphone or file in, mouth shapes out.

Live:    AudioDriver("mic" | "mic:DEVICE" | path, config) -> start(), mouth_at(t), stop()
Render:  file_mouth_track(path, fps, config) -> MouthTrack;  src.output.audio_mux.AudioFileMux(path) for FileOutput.audio
Audio:   iter_audio_blocks(path), decode_audio(path) (16 kHz mono float32)
Voice:   calibrate_voice(config, ...); CLI pieces in src.app.calibrate_voice
Text:    src.audio.tts.synthesize(text, voice) -> Utterance (PCM, phoneme and word timings);
         src.audio.tts.mouth.utterance_mouth_track(utt, fps, config); audio.language: src.audio.lipsync.language
"""

from src.audio.driver import AudioDriver, parse_audio_spec
from src.audio.io.blocks import AudioBlock, AudioInputError
from src.audio.io.file_source import decode_audio, iter_audio_blocks, probe_audio
from src.audio.lipsync.calibrate import calibrate_voice
from src.audio.lipsync.track import MouthTrack, file_mouth_track
from src.audio.lipsync.vowels import VowelTemplates, load_templates
from src.audio.pcm import PcmListener, PcmQueue, PcmSource

__all__ = [
    "AudioBlock",
    "AudioDriver",
    "AudioInputError",
    "MouthTrack",
    "PcmListener",
    "PcmQueue",
    "PcmSource",
    "VowelTemplates",
    "calibrate_voice",
    "decode_audio",
    "file_mouth_track",
    "iter_audio_blocks",
    "load_templates",
    "parse_audio_spec",
    "probe_audio",
]
