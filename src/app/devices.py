"""`python main.py devices`: cameras, audio inputs, animators, outputs, virtual camera backends, providers."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

import pyvirtualcam

from src.animation import ANIMATORS
from src.capture import list_cameras
from src.core.config import AppConfig
from src.core.errors import UserError
from src.output import OUTPUTS
from src.output.vcam import LINUX_HINT, one_line, platform_hint

_PLATFORM_BACKENDS = {"Linux": ["v4l2loopback"], "Windows": ["obs", "unitycapture"], "Darwin": ["obs"]}
_ALL_BUILTIN = ["v4l2loopback", "obs", "unitycapture"]


def _v4l2loopback_devices() -> list[dict[str, str]]:
    """v4l2loopback devices from sysfs (no device is opened: an app may be using it)."""
    found = []
    for node in sorted(Path("/sys/devices/virtual/video4linux").glob("video*")):
        try:
            label = (node / "name").read_text().strip()
        except OSError:
            label = ""
        found.append({"device": f"/dev/{node.name}", "label": label})
    return found


def describe_vcam_backends() -> list[dict[str, Any]]:
    """Every virtual camera backend we know: whether it is usable here and, if not, why.

    Each item: {"name" (= "backend"), "available" (bool), "devices" (list of {"device", "label"}), "reason"}.
    Linux devices are found in sysfs; on Windows/macOS the OBS backend is probed with a
    tiny camera that is closed at once.
    """
    system = platform.system()
    native = _PLATFORM_BACKENDS.get(system, [])
    registered = set(pyvirtualcam.camera.BACKENDS)
    result: list[dict[str, Any]] = []
    for name in [*_ALL_BUILTIN, *sorted(registered - set(_ALL_BUILTIN))]:
        entry: dict[str, Any] = {"name": name, "backend": name, "available": False, "devices": [], "reason": ""}
        if name in _ALL_BUILTIN and name not in native:
            entry["reason"] = f"not for {system} (only {', '.join(k for k, v in _PLATFORM_BACKENDS.items() if name in v)})"
        elif name not in registered:
            entry["reason"] = "not built into this pyvirtualcam; " + platform_hint(system)
        elif name == "v4l2loopback":
            devices = _v4l2loopback_devices()
            entry["devices"] = devices
            entry["available"] = bool(devices)
            if not devices:
                loaded = os.path.isdir("/sys/module/v4l2loopback")
                entry["reason"] = ("module loaded but no device; " if loaded else "module not loaded; ") + LINUX_HINT
        elif name in _ALL_BUILTIN:
            try:
                cam = pyvirtualcam.Camera(320, 240, 30, backend=name)
            except Exception as exc:  # noqa: BLE001 - the reason is the point
                entry["reason"] = f"{one_line(str(exc))}; {platform_hint(system)}"
            else:
                entry["available"] = True
                entry["devices"] = [{"device": cam.device, "label": cam.device}]
                cam.close()
        else:
            entry["available"] = True
            entry["reason"] = "registered by the application (not probed)"
        result.append(entry)
    return result



def cmd_devices(args: argparse.Namespace, config: AppConfig) -> int:
    import onnxruntime as ort

    cams = list_cameras()
    print("cameras:")
    for c in cams or ["(none found)"]:
        print(f"  {c}")
    try:
        from src.audio.io.devices import describe_devices

        print("audio inputs: " + describe_devices("input"))
    except (ImportError, UserError, OSError) as exc:
        print(f"audio inputs: unavailable ({exc})")
    print("animators: " + ", ".join(ANIMATORS.names()))
    print("outputs: " + ", ".join(OUTPUTS.names()))
    print("virtual camera backends:")
    for b in describe_vcam_backends():
        state = "available" if b.get("available") else f"missing: {b.get('reason', '')}"
        print(f"  {b.get('name')}: {state}")
    print("onnxruntime providers: " + ", ".join(ort.get_available_providers()))
    return 0


