"""Finding audio devices through sounddevice (PortAudio): by index, by name, or the default."""

from __future__ import annotations

import logging
import threading
from typing import Any

from src.audio.io.blocks import AudioInputError

log = logging.getLogger(__name__)

_open_streams = 0  # streams this package holds open (a PortAudio rescan would break them)
_lock = threading.Lock()


def _sd() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 missing
        raise AudioInputError(f"microphone: PortAudio is not available ({exc}); install libportaudio2") from None
    return sounddevice


def stream_opened() -> None:
    global _open_streams
    with _lock:
        _open_streams += 1


def stream_closed() -> None:
    global _open_streams
    with _lock:
        _open_streams = max(0, _open_streams - 1)


def rescan_devices(force: bool = False) -> bool:
    """Re-enumerate PortAudio devices (a device plugged in or a sound server started after import).

    PortAudio can only rescan by re-initialising, which ends every open stream, so this
    is skipped (returns False) while this package holds a stream open unless `force`.
    """
    sd = _sd()
    with _lock:
        if _open_streams and not force:
            return False
        try:
            sd._terminate()
            sd._initialize()
        except Exception as exc:  # noqa: BLE001 - a failed rescan leaves the old list
            log.debug("PortAudio rescan failed: %s", exc)
            return False
    return True


def all_devices() -> list[dict[str, Any]]:
    sd = _sd()
    try:
        return [dict(d) for d in sd.query_devices()]
    except Exception:  # noqa: BLE001 - PortAudio without a host API
        return []


def describe_devices(kind: str = "input") -> str:
    """'0: name (2 in, 0 out); ...' for devices with that direction, or a note that there are none."""
    devs = all_devices()
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    chosen = [d for d in devs if d.get(key, 0) > 0]
    if not chosen:
        if not devs:
            return "no audio devices at all"
        listing = "; ".join(f"{d['index']}: {d['name']}" for d in devs)
        return f"no {kind} devices (devices: {listing})"
    return "; ".join(f"{d['index']}: {d['name']} ({d['max_input_channels']} in, {d['max_output_channels']} out)" for d in chosen)


def resolve_input_device(device: str | int | None) -> dict[str, Any]:
    """The PortAudio input device for `device` (None = the default, an index, or part of a name).

    Raises AudioInputError (one line, listing the input devices) when there is no
    input device, the index is not an input, or a name matches none or several.
    """
    devs = all_devices()
    inputs = [d for d in devs if d.get("max_input_channels", 0) > 0]
    label = "microphone" if device is None or device == "" else f"microphone {device!r}"
    if not inputs:
        raise AudioInputError(
            f"{label}: no audio input device found ({describe_devices('input')}); plug in a microphone or use --audio FILE"
        )
    if device is None or device == "":
        sd = _sd()
        try:
            idx = sd.default.device[0]
        except Exception:  # noqa: BLE001 - no default device is not an error: take the first input
            idx = -1
        if idx is None or idx < 0:
            idx = inputs[0]["index"]
        match = [d for d in inputs if d["index"] == idx]
        return match[0] if match else inputs[0]
    text = str(device).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        match = [d for d in inputs if d["index"] == idx]
        if not match:
            raise AudioInputError(f"{label}: no input device with that index; input devices: {describe_devices('input')}")
        return match[0]
    exact = [d for d in inputs if d["name"].lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    partial = [d for d in inputs if text.lower() in d["name"].lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise AudioInputError(f"{label}: no input device name contains it; input devices: {describe_devices('input')}")
    names = "; ".join(f"{d['index']}: {d['name']}" for d in partial)
    raise AudioInputError(f"{label}: matches several input devices ({names}); use mic:INDEX or a longer part of the name")
