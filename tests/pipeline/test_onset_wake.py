"""The live animate stage is woken by speech onsets instead of polling (src/pipeline/onset_wake.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_source_without_block_listeners_keeps_polling() -> None:
    from src.pipeline.onset_wake import OnsetWake

    assert OnsetWake.attach(None, 0.1) is None
    assert OnsetWake.attach(object(), 0.1) is None


def test_speech_in_a_real_audio_file_wakes_the_waiter_once_per_onset(make_config) -> None:
    """The bundled speech, analysed as fast as it decodes: the wake fires on the mouth's rising
    edges only (not for every block while it stays open), and the mouth is open at each."""
    from src.audio import AudioDriver
    from src.pipeline.onset_wake import OnsetWake

    config = make_config()
    driver = AudioDriver(str(ROOT / "assets" / "speech_en.wav"), config, realtime=False, loop=False, play_audio=False)
    threshold = 0.1 * config.audio.mouth.max_open
    wake = OnsetWake.attach(driver, threshold)
    assert wake is not None
    fired: list[float] = []
    blocks = [0]
    original = wake._on_block

    def counting(block) -> None:
        before = wake._event.is_set()
        original(block)
        blocks[0] += 1
        if wake._event.is_set() and not before:
            fired.append(block.end_ts)
            assert driver.mouth_at(block.end_ts).open > threshold
            wake.arm()

    driver._block_listeners = [counting]
    driver.start()
    try:
        assert driver.ended.wait(60)
    finally:
        driver.stop()
    assert blocks[0] > 1000  # 11.5 s of 10 ms blocks
    assert 3 <= len(fired) <= blocks[0] // 20, f"{len(fired)} wakes for {blocks[0]} blocks"
    assert wake.wait(0.0) is False  # nothing pending once armed
    wake.wake()
    assert wake.wait(0.0) is True
