"""The command-line jobs: build an animator, open drivers and outputs, run live or render.

main.py parses arguments; everything here validates them at the boundary and
raises UserError subclasses with one-line messages naming the input and the fix.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from src.animation.fallback import build_animator
from src.app.calibrate_voice import cmd_calibrate_voice
from src.app.devices import cmd_devices
from src.app.serve import cmd_serve
from src.audio import AudioDriver
from src.capture import open_capture
from src.core.config import AppConfig, load_config, resolve_path
from src.core.errors import OutputError, UserError
from src.output import Output, create_output
from src.output.file_output import FileOutput
from src.pipeline.live import LivePipeline
from src.pipeline.offline import render

log = logging.getLogger("puppetcam")

def config_from_args(args: argparse.Namespace) -> AppConfig:
    """The config for a command: config.yaml, then `--set` overrides, then the options that are config
    values (`--face-index`, `--debug`). Built once here; nothing writes to it while the job runs."""
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "face_index", None) is not None:
        if args.face_index < 0:
            raise UserError(f"--face-index {args.face_index}: must be 0 or more (0 = the largest face)")
        overrides.append(f"source.face_index={args.face_index}")
    if getattr(args, "debug", False):
        overrides.append("logging.level=debug")
    config = load_config(getattr(args, "config", None), overrides)
    logging.getLogger().setLevel(config.logging.level.upper())
    return config


def source_path(args: argparse.Namespace, config: AppConfig) -> str:
    src = getattr(args, "source", None) or config.source.image
    return str(resolve_path(src))


# -- run ------------------------------------------------------------------------------------------

def _has_display() -> bool:
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_outputs(specs: list[str], config: AppConfig) -> list[Output]:
    if not specs:
        if not _has_display():
            raise OutputError("no --output given and no display for a window; use --output file:out/live.mp4, "
                              "--output webrtc or --output vcam")
        specs = ["window"]
    return [create_output(spec, config) for spec in specs]


def cmd_run(args: argparse.Namespace, config: AppConfig) -> int:
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        raise UserError(f"--duration {args.duration}: must be a positive number of seconds")
    driver = args.driver if args.driver is not None else config.capture.driver
    audio_spec = args.audio if args.audio is not None else config.audio.input
    outputs = _open_outputs(args.output, config)
    capture = open_capture(driver, config, realtime=True, loop=True if args.loop else None)  # fail fast on a bad driver
    try:
        animator = build_animator(config, args.animator, source_path(args, config), live=True)
    except BaseException:
        if capture is not None:
            capture.close()
        raise
    mouth = open_live_audio(audio_spec, config, play=args.play_audio or config.audio.play_audio, loop=driver in (None, "none"))
    stamper = None
    if config.output.stamp_capture_time:
        from src.output.timestamp_code import stamp

        stamper = stamp
    features = None
    if animator.needs_audio_features and mouth is not None:
        from src.animation.lipsync_unet import LatestMelWindow

        window = LatestMelWindow(config.pipeline.fps)
        mouth.add_pcm_listener(window)
        features = lambda tf: window.latest()  # noqa: E731 - the newest complete window drives the next frame
        log.info("audio-driven model: its mouth lags the voice by %.0f ms (the mel window's future half)", window.lookahead_ms)
    pipe = LivePipeline(config, animator, outputs, capture=capture, mouth=mouth, stamper=stamper, features_at=features)
    if mouth is not None:
        for out in outputs:
            if out.accepts_audio:
                out.attach_audio(mouth)
    try:
        pipe.start()
        if mouth is not None:
            mouth.start()
        for out in outputs:
            url = getattr(out, "url", None)
            if url:
                print(f"Live preview: {url}   (OBS Browser Source: {url}{'&' if '?' in url else '?'}bare=1)", flush=True)
        log.info("running (%s); Ctrl+C to stop", ", ".join(o.name for o in outputs))
        pipe.run(args.duration)
    finally:
        pipe.stop()
        if mouth is not None:
            mouth.stop()
    log.info("stopped: %s", pipe.metrics.summary_line())
    return 0


def open_live_audio(spec: str | None, config: AppConfig, *, play: bool, loop: bool) -> AudioDriver | None:
    """The live audio driver for `spec` (mic[:DEVICE] | file | none), or None."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    return AudioDriver(spec, config, realtime=True, loop=loop, play_audio=play)


# -- render ---------------------------------------------------------------------------------------

def cmd_render(args: argparse.Namespace, config: AppConfig) -> int:
    out_path = Path(args.output).expanduser()
    if out_path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".webm"):
        raise OutputError(f"--output {args.output}: give a video file name ending in .mp4 (or .mov, .mkv, .webm)")
    if args.batch is not None and args.batch < 1:
        raise UserError(f"--batch {args.batch}: must be 1 or more")
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        raise UserError(f"--duration {args.duration}: must be a positive number of seconds")
    text_track = None
    t_start = time.perf_counter()  # the whole job (speech, lip-sync analysis, frames), for the closing line
    if getattr(args, "text", None) is not None:
        if args.audio:
            raise UserError("--text and --audio: give one of them (the text is spoken, the audio file is lip-synced)")
        args.audio = str(out_path.with_name(f".{out_path.stem}.tts.wav"))  # removed after the render
    elif getattr(args, "voice", None):
        raise UserError(f"--voice {args.voice}: only used with --text")
    capture = open_capture(args.driver, config, realtime=False, loop=False) if args.driver else None
    try:
        animator = build_animator(config, args.animator, source_path(args, config), live=False)
    except BaseException:
        if capture is not None:
            capture.close()
        raise
    fps = capture.fps if capture is not None else (args.fps or config.pipeline.fps)
    n_frames = None
    mouth_track = None
    output = FileOutput(str(out_path), config)
    if args.audio:
        from src.audio import file_mouth_track
        from src.output.audio_mux import AudioFileMux

        # Phone recognition holds the GIL: run it before the render threads start. An audio-driven model
        # reads the audio itself; its fallback (meshwarp) gets the cheap live-method shapes.
        if getattr(args, "text", None) is not None:
            from src.audio.tts.render_text import speak_to_files

            out_path.parent.mkdir(parents=True, exist_ok=True)
            text_track, _ = speak_to_files(args.text, args.voice, config, out_path, Path(args.audio), fps)
        track = text_track or file_mouth_track(args.audio, fps, config, method="live" if animator.needs_audio_features else None)
        mouth_track = track.shapes
        n_frames = track.n_frames
        if capture is not None:
            clip_frames = getattr(capture, "frame_count", 0)  # only a video file knows its length
            n_frames = min(n_frames, clip_frames) if clip_frames else n_frames
        if args.duration is not None:
            n_frames = min(n_frames, int(round(args.duration * fps)))
        output.audio = AudioFileMux(args.audio, max_duration_s=n_frames / fps)
        log.info("audio %s: %.2f s, mouth shapes by %s", args.audio, track.duration_s, track.method)
    elif capture is None:
        n_frames = int(round((args.duration or 10.0) * fps))
    elif args.duration is not None:
        n_frames = int(round(args.duration * fps))
    features = None
    if animator.needs_audio_features and args.audio:
        from src.animation.lipsync_unet import mel_windows
        from src.audio import decode_audio

        features = mel_windows(decode_audio(args.audio), fps, n_frames or 0)
    try:
        result = render(config, animator, [output], capture=capture, n_frames=n_frames, fps=fps, mouth_track=mouth_track,
                        audio_features=features, batch_size=args.batch)
    finally:
        if text_track is not None:
            Path(args.audio).unlink(missing_ok=True)
    total_s = time.perf_counter() - t_start
    log.info("rendered %d frames (%.2f s at %.2f fps) in %.2f s, %.2f s with the lip-sync analysis and setup: %.1fx real "
             "time -> %s", result.frames, result.media_duration_s, result.fps, result.wall_s, total_s,
             result.media_duration_s / total_s if total_s > 0 else float("inf"), out_path)
    if result.corrupt_frames:
        log.warning("%d corrupt driver frame(s) were skipped", result.corrupt_frames)
    if capture is not None and result.faceless_frames:
        log.info("%d driver frame(s) had no face: the avatar idled there", result.faceless_frames)
    return 0


# -- prepare --------------------------------------------------------------------------------------

def cmd_prepare(args: argparse.Namespace, config: AppConfig) -> int:
    name = args.animator or config.animation.model
    if args.video:
        from src.animation.lipsync_unet import prepare_template

        path = prepare_template(args.video, config, force=args.force)
        print(f"avatar template ready: {path}")
        return 0
    if args.force:
        from src.animation.meshwarp.avatar import AvatarCache, file_hash

        src = resolve_path(source_path(args, config))
        cache_dir = AvatarCache(config.cache.dir).dir
        for old in cache_dir.glob(f"{file_hash(src)[:20]}_*.npz") if cache_dir.is_dir() else []:
            old.unlink(missing_ok=True)
    build_animator(config, name, source_path(args, config), live=False)
    print(f"prepared {source_path(args, config)} for {name}; cache: {Path(config.cache.dir).expanduser()}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, AppConfig], int]] = {
    "run": cmd_run,
    "render": cmd_render,
    "prepare": cmd_prepare,
    "devices": cmd_devices,
    "calibrate-voice": cmd_calibrate_voice,
    "serve": cmd_serve,
}


def dispatch(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    fn = COMMANDS.get(args.command)
    if fn is None:
        raise UserError(f"unknown command {args.command!r}")
    return fn(args, config)
