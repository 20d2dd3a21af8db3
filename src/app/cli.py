"""The command line: `python main.py run | render | prepare | devices | calibrate-voice`.

Exit status: 0 on success, 2 on a user error (a one-line message on stderr), 1 on an internal error.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
import traceback

from src.app import commands
from src.app.calibrate_voice import add_calibrate_voice_parser
from src.app.serve import add_serve_parser
from src.core.errors import UserError

log = logging.getLogger("puppetcam")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config file (default: config.yaml next to main.py)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set pipeline.fps=60 (repeatable)")
    p.add_argument("--debug", action="store_true", help="debug logging and tracebacks for internal errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Animate a portrait live and stream it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="animate live")
    _common(run)
    run.add_argument("--source", help="portrait image (default: source.image in config)")
    run.add_argument("--face-index", type=int, help="which face of the portrait when it has several (0 = largest)")
    run.add_argument("--driver", help="webcam[:N] | video file | none (default: capture.driver in config)")
    run.add_argument("--loop", action="store_true", help="loop a driver video file")
    run.add_argument("--audio", help="mic[:DEVICE] | audio file | none (default: audio.input in config)")
    run.add_argument("--play-audio", action="store_true", help="play an audio file to the speakers while it drives")
    run.add_argument("--output", action="append", default=[], metavar="SPEC",
                     help="window | file:PATH | vcam[:DEVICE] | webrtc[:HOST:PORT] | null (repeatable)")
    run.add_argument("--animator", help="animator name (default: animation.model in config)")
    run.add_argument("--duration", type=float, help="stop after this many seconds")

    render = sub.add_parser("render", help="render offline to a video file, every frame")
    _common(render)
    render.add_argument("--source", help="portrait image (default: source.image in config)")
    render.add_argument("--face-index", type=int, help="which face of the portrait when it has several (0 = largest)")
    render.add_argument("--driver", help="driving video (default: none: idle motion)")
    render.add_argument("--audio", help="speech audio file: lip sync, and the output carries it")
    render.add_argument("--text", help="words to speak (text to speech): the mouth follows its phonemes; a .vtt is written beside")
    render.add_argument("--voice", help="text-to-speech voice, an espeak-ng language code (default: audio.tts.voice)")
    render.add_argument("--output", required=True, help="output video file (.mp4)")
    render.add_argument("--animator", help="animator name (default: animation.model in config)")
    render.add_argument("--batch", type=int, help="frames per animator call")
    render.add_argument("--duration", type=float, help="seconds to render without a driver or audio (default 10)")
    render.add_argument("--fps", type=float, help="frame rate without a driver (default: pipeline.fps)")

    prepare = sub.add_parser("prepare", help="compute and cache everything source-specific")
    _common(prepare)
    prepare.add_argument("--source", help="portrait image (default: source.image in config)")
    prepare.add_argument("--face-index", type=int, help="which face of the portrait when it has several (0 = largest)")
    prepare.add_argument("--video", help="talking video: build an avatar template for the lipsync-unet animator")
    prepare.add_argument("--animator", help="animator to prepare for (default: animation.model in config)")
    prepare.add_argument("--force", action="store_true", help="recompute even if cached")

    devices = sub.add_parser("devices", help="list cameras, audio devices, animators, outputs and providers")
    _common(devices)

    _common(add_calibrate_voice_parser(sub))
    add_serve_parser(sub, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID` prints every thread's stack: for a stop that hangs
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        return commands.dispatch(args)
    except UserError as exc:
        msg = " ".join(str(exc).split())  # one line, always
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if args.debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback; please report it)", file=sys.stderr)
        return 1

