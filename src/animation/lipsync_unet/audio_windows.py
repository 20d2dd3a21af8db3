"""Per-video-frame log-mel windows for the lip-sync U-Net, offline and streaming.

Wav2Lip settings (src.audio.lipsync.mel: 16 kHz, pre-emphasis 0.97, n_fft 800, hop 200 =
12.5 ms, 80 mels, 55-7600 Hz, normalised to [-4, 4]). The window for the video
frame at time t is the 16 mel frames (200 ms) centred on t: mel frames
c-8 .. c+7 with c = round(t * 80). Mel frame j is centred on sample j * 200;
audio before 0 and past the end is silence (zeros), so the offline and the
streaming computation give the same windows. The streaming version can emit
the window of frame t once audio up to t + 112.5 ms has arrived.
"""

from __future__ import annotations

import numpy as np

from src.audio.lipsync.mel import WAV2LIP_MEL, MelSettings, mel_filterbank, power_spectrogram, pre_emphasis

CONTEXT = 8  # mel frames before the frame's centre; the window is 2 * CONTEXT = 16 frames (200 ms)
WINDOW = 2 * CONTEXT


def _pad_start(s: MelSettings) -> int:
    return CONTEXT * s.hop_length + s.n_fft // 2


def log_mel_frames(x: np.ndarray, s: MelSettings = WAV2LIP_MEL, prev: float = 0.0) -> np.ndarray:
    """wav2lip_mel without centre padding: frame k covers x[k*hop : k*hop + n_fft]. (n_mels, n_frames)."""
    y = pre_emphasis(np.asarray(x, dtype=np.float32), s.pre_emphasis, prev)
    mag = np.sqrt(power_spectrogram(y, s.n_fft, s.hop_length, s.win_length, center=False))
    fb = mel_filterbank(s.sample_rate_hz, s.n_fft, s.n_mels, s.fmin_hz, s.fmax_hz)
    db = 20.0 * np.log10(np.maximum(1e-5, mag @ fb.T)) - s.ref_level_db
    norm = np.clip(8.0 * ((db - s.min_level_db) / -s.min_level_db) - 4.0, -4.0, 4.0)
    return norm.T.astype(np.float32)


def window_centres(fps: float, n_frames: int, s: MelSettings = WAV2LIP_MEL) -> np.ndarray:
    mel_rate = s.sample_rate_hz / s.hop_length
    return np.round(np.arange(n_frames) / fps * mel_rate).astype(np.int64)


def mel_windows(audio_16k: np.ndarray, fps: float, n_frames: int, settings: MelSettings = WAV2LIP_MEL) -> np.ndarray:
    """[n_frames, 1, 80, 16] float32 windows for frames 0 .. n_frames-1 at `fps`."""
    s = settings
    if n_frames <= 0:
        return np.zeros((0, 1, s.n_mels, WINDOW), np.float32)
    centres = window_centres(fps, n_frames, s)
    pad0 = _pad_start(s)
    # Padded-mel frame k covers padded samples [k*hop, k*hop + n_fft) and is centred on original
    # sample (k - CONTEXT) * hop; frame i's window is padded-mel frames centres[i] .. centres[i] + 15.
    need = (int(centres[-1]) + WINDOW - 1) * s.hop_length + s.n_fft
    x = np.zeros(max(need, pad0 + len(audio_16k)), np.float32)
    x[pad0 : pad0 + len(audio_16k)] = audio_16k
    mel = log_mel_frames(x[:need], s)
    idx = centres[:, None] + np.arange(WINDOW)[None, :]
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2)[:, None])


class MelWindowStream:
    """Streaming `mel_windows` for live audio blocks (16 kHz mono float32).

    `push(block)` returns the windows of every frame whose 200 ms window is now
    complete, in frame order, as (frame_index, window [1, 80, 16]) pairs.
    """

    def __init__(self, fps: float, settings: MelSettings = WAV2LIP_MEL, start_frame: int = 0) -> None:
        self.fps = fps
        self.s = settings
        self.next_frame = start_frame
        self._buf = np.zeros(_pad_start(settings), np.float32)  # padded signal; leading silence
        self._buf_start = 0  # padded-sample index of _buf[0]
        self._mel_rate = settings.sample_rate_hz / settings.hop_length

    @property
    def lookahead_ms(self) -> float:
        """Audio needed past a frame's time before its window is complete."""
        return ((CONTEXT - 1) * self.s.hop_length + self.s.n_fft // 2) / self.s.sample_rate_hz * 1000.0

    def _centre(self, frame: int) -> int:
        return int(np.round(frame / self.fps * self._mel_rate))

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float32).ravel()])
        out: list[tuple[int, np.ndarray]] = []
        hop, n_fft = self.s.hop_length, self.s.n_fft
        end = self._buf_start + len(self._buf)
        while True:
            c = self._centre(self.next_frame)
            lo, hi = c * hop, (c + WINDOW - 1) * hop + n_fft
            if hi > end:
                break
            a, b = lo - self._buf_start, hi - self._buf_start
            prev = float(self._buf[a - 1]) if a > 0 else 0.0
            mel = log_mel_frames(self._buf[a:b], self.s, prev)
            out.append((self.next_frame, mel[:, :WINDOW][None]))
            self.next_frame += 1
        # Keep what the next frame's window (and its pre-emphasis sample) still needs.
        keep_from = self._centre(self.next_frame) * hop - 1 - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return out


def window_loudness_db(window: np.ndarray, settings: MelSettings = WAV2LIP_MEL) -> float:
    """Loudest mel band of a window, back in the dB scale the mel was normalised from.

    Speech at a normal level reads about -35 here, digital silence -100, a quiet
    room's mic noise (-50 dBFS white noise) about -64.
    """
    s = settings
    return float((np.max(window) + 4.0) / 8.0 * -s.min_level_db + s.min_level_db)


class LatestMelWindow:
    """Live audio -> the newest complete mel window, for the animate stage.

    Register it as a PCM listener of an AudioDriver (`driver.add_pcm_listener(w)`); it runs on the
    audio thread, so it only computes the windows and swaps a reference. `latest()` is what the
    next output frame uses: its audio lags the capture by `lookahead_ms` (the window's future half).
    """

    def __init__(self, fps: float) -> None:
        self._stream = MelWindowStream(fps)
        self._latest: np.ndarray | None = None

    @property
    def lookahead_ms(self) -> float:
        return self._stream.lookahead_ms

    def __call__(self, capture_ts: float, samples: np.ndarray) -> None:
        done = self._stream.push(samples)
        if done:
            self._latest = done[-1][1]

    def latest(self) -> np.ndarray | None:
        return self._latest
