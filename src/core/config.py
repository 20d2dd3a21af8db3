"""Typed configuration: one pydantic model mirroring config.yaml section by section.

Every default lives in config.yaml; the models below give types, ranges and
units (in the field names). Unknown keys and bad values raise `ConfigError`
with a one-line message naming the key and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from src.core.background_spec import validate_spec
from src.core.errors import ConfigError
from src.core.languages import check_language

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


class Section(BaseModel):
    """Base for every section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(Section):
    image: str = "assets/portrait.png"
    face_index: int = Field(0, ge=0)


class CaptureConfig(Section):
    driver: str = "none"
    width_px: int = Field(640, ge=16, le=7680)
    height_px: int = Field(480, ge=16, le=4320)
    fps: float = Field(30.0, gt=0, le=240)
    mjpg: bool = True
    loop: bool = False


class OneEuroConfig(Section):
    enabled: bool = True
    min_cutoff_hz: float = Field(1.5, gt=0)
    beta: float = Field(1.5, ge=0)
    d_cutoff_hz: float = Field(1.0, gt=0)
    lid_beta: float = Field(50.0, ge=0)  # eyelids, relative to their eye's corners (src/capture/lid_filter.py)
    lid_d_cutoff_hz: float = Field(5.0, gt=0)


class TrackingConfig(Section):
    max_faces: int = Field(4, ge=1, le=16)
    min_detection_confidence: float = Field(0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(0.5, ge=0, le=1)
    neutral_frames: int = Field(8, ge=1, le=300)
    lost_after_ms: float = Field(500.0, ge=0)
    smoothing: OneEuroConfig = OneEuroConfig()


class MeshWarpConfig(Section):
    head_margin: float = Field(1.45, ge=1.0, le=3.0)
    background_margin: float = Field(2.1, ge=1.1, le=4.0)
    neck_follow: float = Field(0.35, ge=0, le=1)
    map_scale: float = Field(0.5, gt=0, le=1)
    mouth_interior: bool = True
    eye_layer: bool = True
    pose_gain: float = Field(1.0, ge=0, le=3)
    expression_gain: float = Field(1.0, ge=0, le=3)
    max_rotation_deg: float = Field(30.0, gt=0, le=90)
    layers: bool = True  # head layer over a still body and a filled background plate (src/animation/meshwarp/layers.py)


class OnnxConfig(Section):
    provider: Literal["auto", "tensorrt", "cuda", "cpu"] = "auto"
    fp16: bool = False
    warmup_runs: int = Field(2, ge=0, le=100)
    trt_cache_dir: str = "~/.cache/puppetcam/trt"
    intra_op_threads: int = Field(0, ge=0, le=256)
    cuda_device_id: int = Field(0, ge=0, le=64)


class LivePortraitConfig(Section):
    model_dir: str | None = None
    relative_motion: bool = True
    stitching: bool = True
    eye_retargeting: bool = False
    lip_retargeting: bool = False
    smoothing: bool = True
    smoothing_min_cutoff_hz: float = Field(1.0, gt=0)
    smoothing_beta: float = Field(0.5, ge=0)
    crop_scale: float = Field(2.3, gt=1, le=5)
    crop_vy_ratio: float = Field(-0.125, ge=-1, le=1)
    audio_lip_gain: float = Field(1.0, ge=0, le=5)


class LipsyncUNetConfig(Section):
    checkpoint: str | None = None
    onnx_path: str | None = None
    template: str | None = None
    size: Literal[160, 320] = 160
    audio_encoder_onnx: str | None = None
    silence_threshold_db: float = Field(-55.0, ge=-100, le=0)
    close_mouth_in_silence: bool = True
    feather_px: int = Field(6, ge=0, le=64)


class AnimationConfig(Section):
    model: str = "meshwarp"
    output_size_px: int = Field(512, ge=64, le=2048)

    @field_validator("output_size_px")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"must be even (H.264 with yuv420p needs even sizes), e.g. {v - 1} or {v + 1}")
        return v
    motion_mode: Literal["relative", "absolute"] = "relative"
    mouth_owner: Literal["audio", "webcam"] = "audio"
    background: str = "keep"  # keep | blur | image:PATH | color:#RRGGBB | transparent (meshwarp)
    gaze: Literal["follow", "camera", "off"] = "follow"  # meshwarp irises: the driver's, at the viewer, the portrait's

    @field_validator("gaze", mode="before")
    @classmethod
    def _gaze_off(cls, v: object) -> object:
        return "off" if v is False else v  # YAML reads a bare off as false

    @field_validator("background")
    @classmethod
    def _background(cls, v: str) -> str:
        try:
            return validate_spec(v)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("animation.background ")) from None
    meshwarp: MeshWarpConfig = MeshWarpConfig()
    onnx: OnnxConfig = OnnxConfig()
    liveportrait: LivePortraitConfig = LivePortraitConfig()
    lipsync_unet: LipsyncUNetConfig = LipsyncUNetConfig()


class IdleConfig(Section):
    enabled: bool = True
    blink_interval_s: tuple[float, float] = (2.0, 6.0)
    blink_duration_ms: float = Field(180.0, gt=0, le=2000)
    breath_period_s: float = Field(4.5, gt=0)
    breath_amplitude: float = Field(0.006, ge=0, le=0.1)
    sway_deg: float = Field(2.0, ge=0, le=20)
    ease_ms: float = Field(900.0, ge=0)
    blend_in_ms: float = Field(200.0, ge=0)
    seed: int | None = None

    @field_validator("blink_interval_s")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1]:
            raise ValueError("must be [min, max] seconds with 0 < min <= max")
        return v


class VadConfig(Section):
    onset_db: float = Field(10.0, gt=0, le=40)
    offset_db: float = Field(6.0, ge=0, le=40)
    onset_min_ms: float = Field(20.0, ge=0, le=500)
    offset_min_ms: float = Field(60.0, ge=0, le=2000)
    min_level_dbfs: float = Field(-55.0, ge=-120, le=0)
    initial_floor_dbfs: float = Field(-50.0, ge=-120, le=0)
    floor_window_ms: float = Field(1500.0, ge=100, le=30000)
    floor_rise_db_per_s: float = Field(3.0, ge=0, le=100)
    voicing_threshold: float = Field(0.45, ge=0, le=1)


class MouthSmoothingConfig(Section):
    attack_ms: float = Field(30.0, ge=0, le=1000)
    release_ms: float = Field(100.0, ge=0, le=2000)
    vowel_smoothing_ms: float = Field(50.0, ge=0, le=1000)
    max_open: float = Field(0.4, gt=0, le=1.5)


class VisemeConfig(Section):
    method: Literal["auto", "phones", "live"] = "auto"
    anticipation_ms: float = Field(200.0, ge=0, le=1000)
    min_shape_ms: float = Field(70.0, ge=0, le=1000)
    hold_pause_ms: float = Field(120.0, ge=0, le=2000)
    relax_pause_ms: float = Field(350.0, ge=0, le=5000)
    transition_ms: float = Field(60.0, ge=0, le=500)
    onset_lead_ms: float = Field(10.0, ge=0, le=200)


class TtsConfig(Section):
    engine: str = "espeak"
    voice: str = "en-us"
    piper_model: str | None = None


class AudioConfig(Section):
    input: str = "none"
    language: str = "auto"
    sample_rate_hz: Literal[16000] = 16000
    block_ms: float = Field(10.0, gt=0, le=100)
    play_audio: bool = False
    loop: bool = False
    ring_s: float = Field(2.0, gt=0, le=60)
    mic_retry_s: float = Field(2.0, gt=0, le=60)
    analysis_window_ms: float = Field(32.0, ge=16, le=128)
    templates: str = "assets/voice/vowel_templates.json"
    voice_profile: str = "~/.local/share/puppetcam/voice_profile.json"
    vad: VadConfig = VadConfig()
    mouth: MouthSmoothingConfig = MouthSmoothingConfig()
    visemes: VisemeConfig = VisemeConfig()
    tts: TtsConfig = TtsConfig()

    @field_validator("language")
    @classmethod
    def _known_language(cls, v: str) -> str:
        return check_language(v)


class PipelineConfig(Section):
    fps: float = Field(30.0, gt=0, le=240)
    queue_size: int = Field(2, ge=1, le=64)
    render_queue_size: int = Field(16, ge=1, le=1024)
    latency_budget_ms: float = Field(100.0, gt=0)
    batch_size: int = Field(1, ge=1, le=256)
    metrics_interval_s: float = Field(1.0, gt=0)
    stop_timeout_s: float = Field(2.0, gt=0)


class FileOutputConfig(Section):
    codec: str = "libx264"
    crf: int = Field(20, ge=0, le=51)
    preset: str = "veryfast"


class WindowOutputConfig(Section):
    title: str = "puppetcam"


class VcamOutputConfig(Section):
    device: str | None = None
    backend: str | None = None
    mirror: bool = False
    fps: float | None = Field(None, gt=0, le=240)
    width_px: int | None = Field(None, ge=16, le=7680)
    height_px: int | None = Field(None, ge=16, le=4320)
    pixel_format: Literal["auto", "bgr", "rgb", "i420"] = "auto"


class WebRTCOutputConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token: str | None = None
    max_viewers: int = Field(8, ge=1, le=64)
    max_offer_bytes: int = Field(65536, ge=1024, le=1048576)
    peer_timeout_s: float = Field(10.0, gt=0, le=300)
    video_codec: Literal["vp8", "h264"] = "vp8"
    shared_encoder: bool = True
    video_bitrate_kbps: int = Field(1500, ge=100, le=20000)
    keyframe_interval_s: float = Field(5.0, ge=0.5, le=60)
    audio_buffer_ms: float = Field(200.0, ge=20, le=2000)


class OutputConfig(Section):
    queue_size: int = Field(2, ge=1, le=64)
    stamp_capture_time: bool = False
    file: FileOutputConfig = FileOutputConfig()
    window: WindowOutputConfig = WindowOutputConfig()
    vcam: VcamOutputConfig = VcamOutputConfig()
    webrtc: WebRTCOutputConfig = WebRTCOutputConfig()


class RayServeConfig(Section):
    """`serve --engine ray`: sessions as Ray actors, neural model stages as Ray Serve deployments."""

    address: str | None = None  # None: start a local Ray instance on loopback; "auto" or HOST:PORT: join
    session_num_cpus: float = Field(0.5, gt=0, le=64)  # CPU share each session actor asks for (benchmark)
    model_num_gpus: float = Field(0.0, ge=0, le=8)  # GPUs per model replica (0: CPU)
    model_replicas: int = Field(1, ge=1, le=64)
    max_restarts: int = Field(-1, ge=-1)  # a session actor whose process or node dies comes back (-1: always)


class ServeConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    engine: str = "local"
    max_sessions: int = Field(4, ge=1, le=1024)
    session_cpu_cores: float = Field(0.5, gt=0, le=64)
    cpu_budget_fraction: float = Field(0.85, gt=0, le=1)
    retry_after_s: int = Field(10, ge=1, le=3600)
    idle_timeout_s: float = Field(120.0, gt=0)
    failure_timeout_s: float = Field(5.0, gt=0)
    admin_token: str | None = None
    max_upload_bytes: int = Field(20_000_000, ge=1024)
    max_upload_pixels: int = Field(40_000_000, ge=1024)
    jitter_target_ms: float = Field(60.0, ge=0, le=2000)
    jitter_max_ms: float = Field(1000.0, ge=20, le=10000)
    audio_delay_ms: float = Field(80.0, ge=0, le=150)
    batch_wait_ms: float | None = Field(None, ge=0)
    ray: RayServeConfig = RayServeConfig()


class CacheConfig(Section):
    dir: str = "~/.cache/puppetcam"


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class AppConfig(Section):
    """The whole configuration (config.yaml)."""

    source: SourceConfig = SourceConfig()
    capture: CaptureConfig = CaptureConfig()
    tracking: TrackingConfig = TrackingConfig()
    animation: AnimationConfig = AnimationConfig()
    idle: IdleConfig = IdleConfig()
    audio: AudioConfig = AudioConfig()
    pipeline: PipelineConfig = PipelineConfig()
    output: OutputConfig = OutputConfig()
    serve: ServeConfig = ServeConfig()
    cache: CacheConfig = CacheConfig()
    logging: LoggingConfig = LoggingConfig()


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at `loc` (the parent of an offending key)."""
    current: Any = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        current = field.annotation
    return sorted(current.model_fields)


def _format_error(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc)
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(AppConfig, loc[:-1])
        where = ".".join(str(p) for p in loc[:-1]) or "top level"
        return f"{origin}: unknown key '{key}'; allowed in {where}: {', '.join(allowed)}"
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{origin}: bad value for '{key}' ({first.get('input')!r}): {msg}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one `--set section.key=value`; the value is read as YAML (numbers, lists, null)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set pipeline.fps=60")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {text!r}: empty key; expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def _apply(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> AppConfig:
    """Read config.yaml (or `path`), apply `--set` overrides, validate."""
    cfg_path = Path(path) if path else DEFAULT_CONFIG_PATH
    if not cfg_path.is_file():
        raise ConfigError(f"config file {cfg_path}: not found; pass an existing file with --config")
    try:
        data = yaml.safe_load(cfg_path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"config file {cfg_path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {cfg_path}: expected a mapping of sections at the top level")
    for item in overrides or []:
        key_path, value = parse_override(item)
        _apply(data, key_path, value)
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        origin = "--set" if overrides and _touches_override(exc, overrides) else str(cfg_path)
        raise ConfigError(_format_error(exc, origin)) from None


def _touches_override(exc: ValidationError, overrides: list[str]) -> bool:
    key = ".".join(str(p) for p in exc.errors()[0]["loc"])
    return any(o.partition("=")[0].strip() == key for o in overrides)


def resolve_path(path: str | Path) -> Path:
    """Expand ~ and make a config path absolute (relative paths are from the project root
    when they exist there, otherwise from the working directory)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if (Path.cwd() / p).exists() or not (PROJECT_ROOT / p).exists():
        return (Path.cwd() / p).resolve()
    return PROJECT_ROOT / p
