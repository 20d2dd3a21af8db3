"""A real microphone for tests and benchmarks: a PulseAudio null sink whose monitor is the default source.

    with VirtualMic() as vmic:          # raises VirtualMicUnavailable (skip the test) if it cannot run
        driver = AudioDriver("mic", config)
        driver.start()
        vmic.play("speech.wav")         # paplay into the sink; sounddevice records it from the monitor

A PulseAudio daemon is started only if none is running, and only a daemon this
helper started is stopped (`pulseaudio -k`) on exit; the sink module it loaded
is unloaded and the previous default source restored either way.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

from src.audio.io.devices import rescan_devices

_names = itertools.count()


class VirtualMicUnavailable(RuntimeError):
    """PulseAudio (or pactl/paplay) is missing or refuses to start; tests skip with this reason."""


def _run(*cmd: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


class VirtualMic:
    """PulseAudio virtual microphone: what `play()` plays is what the default input device records."""

    def __init__(self, sink_name: str | None = None, rate_hz: int = 48000, channels: int = 2) -> None:
        self.sink_name = sink_name or f"puppetcam_vmic_{os.getpid()}_{next(_names)}"
        self.rate_hz = rate_hz
        self.channels = channels
        self.started_daemon = False
        self._module: str | None = None
        self._previous_source: str | None = None
        self._players: list[subprocess.Popen[bytes]] = []

    @staticmethod
    def available() -> str | None:
        """None if a virtual mic can be made here, else the reason it cannot."""
        for tool in ("pulseaudio", "pactl", "paplay"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils)"
        return None

    def __enter__(self) -> VirtualMic:
        reason = self.available()
        if reason:
            raise VirtualMicUnavailable(reason)
        if not self._server_up():
            res = _run("pulseaudio", "-D", "--exit-idle-time=-1")
            if res.returncode != 0:
                raise VirtualMicUnavailable(f"pulseaudio -D failed: {res.stderr.strip()[:200]}")
            self.started_daemon = True
            deadline = time.monotonic() + 5.0
            while _run("pactl", "info").returncode != 0:
                if time.monotonic() > deadline:
                    self._kill_daemon()
                    raise VirtualMicUnavailable("pulseaudio started but pactl cannot reach it")
                time.sleep(0.05)
        info = _run("pactl", "get-default-source")
        self._previous_source = info.stdout.strip() if info.returncode == 0 and info.stdout.strip() else None
        res = _run(
            "pactl", "load-module", "module-null-sink", f"sink_name={self.sink_name}",
            f"rate={self.rate_hz}", f"channels={self.channels}",
        )
        if res.returncode != 0:
            self.__exit__(None, None, None)
            raise VirtualMicUnavailable(f"pactl load-module module-null-sink failed: {res.stderr.strip()[:200]}")
        self._module = res.stdout.strip()
        _run("pactl", "set-default-source", f"{self.sink_name}.monitor")
        rescan_devices()  # PortAudio lists devices at import; let it see the sound server
        return self

    def play(self, path: str | Path, wait: bool = False) -> subprocess.Popen[bytes]:
        """Play a file into the virtual mic (paplay); returns the process."""
        proc = subprocess.Popen(
            ["paplay", f"--device={self.sink_name}", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._players.append(proc)
        if wait:
            proc.wait(timeout=600)
        return proc

    @staticmethod
    def _server_up() -> bool:
        """A daemon that answers (one that is shutting down still passes `pulseaudio --check`)."""
        for _ in range(40):
            if _run("pulseaudio", "--check").returncode != 0:
                return False
            if _run("pactl", "info").returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def _kill_daemon(self) -> None:
        if self.started_daemon:
            _run("pulseaudio", "-k")
            deadline = time.monotonic() + 5.0
            while _run("pulseaudio", "--check").returncode == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.started_daemon = False

    def __exit__(self, *exc: object) -> None:
        for proc in self._players:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self._players.clear()
        if self._previous_source and self._previous_source != f"{self.sink_name}.monitor":
            _run("pactl", "set-default-source", self._previous_source)
        if self._module:
            _run("pactl", "unload-module", self._module)
            self._module = None
        self._kill_daemon()
