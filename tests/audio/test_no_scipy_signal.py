"""Opening a microphone and analysing audio must not import scipy.signal (0.6-0.9 s of every start; a serve session
moved to another Ray node pays it again): the resampler's filter and the analysis's DC blocker are written out, and
they give scipy's numbers exactly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from src.audio.io.resample import STOPBAND_DB, kaiser_lowpass, kaiser_order
from src.audio.lipsync.dc_block import POLE, dc_block
from tests.support.paths import ROOT


@pytest.mark.parametrize("up,low,up_rate", [(1, 16000.0, 48000.0), (160, 16000.0, 44100.0 * 160), (2, 32000.0, 96000.0),
                                            (147, 44100.0, 48000.0 * 147)])
def test_kaiser_lowpass_is_scipys_firwin(up: int, low: float, up_rate: float) -> None:
    from scipy.signal import firwin, kaiserord

    width = 0.1 * low
    assert kaiser_order(STOPBAND_DB, width / (up_rate / 2.0)) == kaiserord(STOPBAND_DB, width / (up_rate / 2.0))
    numtaps, beta = kaiser_order(STOPBAND_DB, width / (up_rate / 2.0))
    n = max(4, -(-numtaps // up)) * up
    ours = kaiser_lowpass(n, low / 2 - width / 2, beta, up_rate)
    theirs = firwin(n, low / 2 - width / 2, window=("kaiser", beta), fs=up_rate)
    assert np.array_equal(ours.astype(np.float32), theirs.astype(np.float32))


def test_dc_block_is_lfilter_bit_for_bit_whatever_the_blocks() -> None:
    from scipy.signal import lfilter

    x = (np.random.default_rng(3).standard_normal(20000) * 0.3).astype(np.float32)
    ref, _ = lfilter([1.0, -1.0], [1.0, -POLE], x, zi=np.zeros(1))
    for sizes in ([160] * 125, [1600] * 12 + [800], [7, 333, 19660]):
        state, out, i = 0.0, [], 0
        for n in sizes:
            y, state = dc_block(x[i : i + n], state)
            out.append(y)
            i += n
        assert np.array_equal(np.concatenate(out), ref), sizes


def test_opening_a_mic_and_analysing_audio_leaves_scipy_signal_unimported() -> None:
    code = ("import sys\n"
            "from src.audio.io.resample import StreamingResampler\n"
            "from src.audio.lipsync.analysis import FrameAnalyzer\n"
            "import numpy as np\n"
            "r = StreamingResampler(48000, 16000)\n"
            "a = FrameAnalyzer(16000)\n"
            "a.push(r.process(np.zeros(480 * 4, np.float32))[:160])\n"
            "print('scipy.signal' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_the_analysis_compiles_its_dc_blocker_before_the_first_hop() -> None:
    """The DC blocker is compiled (or loaded from numba's cache) when the analysis is made, not in the audio thread
    at the first hop, where a compilation would hold up the first mouth shapes."""
    from src.audio.lipsync import dc_block as kernel
    from src.audio.lipsync.analysis import FrameAnalyzer
    from src.audio.lipsync.dc_block import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba is not installed: the DC blocker runs as plain Python")
    a = FrameAnalyzer(16000)
    before = len(kernel._dc_block.signatures)
    assert before >= 1
    x = (np.random.default_rng(1).standard_normal(1600) * 0.1).astype(np.float32)
    a.push(x[:160])
    a.push_many([x[i : i + 160] for i in range(160, 1600, 160)])
    a.push(x[:160].astype(np.float64))
    assert len(kernel._dc_block.signatures) == before
