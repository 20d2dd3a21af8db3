"""OnsetWake with a file input that runs ahead (no block arrives per hop): the wait ends when the
known opening is due, not at its timeout (src/pipeline/onset_wake.py, src/audio/driver.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from src.audio import AudioDriver
from src.bench.audio import burst_signal, write_wav
from src.core.config import AppConfig
from src.pipeline.onset_wake import OnsetWake


def test_a_waiter_wakes_when_a_known_opening_is_due(make_config: Callable[..., AppConfig], tmp_path: Path) -> None:
    config = make_config(f"audio.voice_profile={tmp_path / 'none.json'}")
    path = write_wav(tmp_path / "bursts.wav", burst_signal(4, 16000), 16000)  # voiced from 0.5, 1.5, 2.5, 3.5 s
    driver = AudioDriver(str(path), config, realtime=True, play_audio=False)
    threshold = 0.1 * config.audio.mouth.max_open
    wake = OnsetWake.attach(driver, threshold)
    assert wake is not None
    assert not driver._block_listeners  # the waiter does not need blocks on time: the driver may run ahead
    driver.start()
    early_open, early_closed = 0, 0
    try:
        period = 1 / 30
        deadline = time.monotonic() + period
        t_end = time.monotonic() + 4.6
        while time.monotonic() < t_end:  # like the animate loop: one wait per frame
            wake.arm()
            wake.wait(deadline - time.monotonic())
            now = time.monotonic()
            if now < deadline - 0.0005:  # woken before the tick
                if driver.mouth_at(now).open > threshold:
                    early_open += 1
                else:
                    early_closed += 1
            deadline = max(deadline, now) + period
    finally:
        driver.stop()
    assert early_open >= 2  # the openings woke the waiter before its tick, and the mouth was open then
    assert early_closed == 0
    assert driver.stats()["blocks"] > 350
