"""Request and response bodies of the HTTP API (pydantic): the handlers validate and answer with these,
and `/api/openapi.json` is generated from them (see `openapi.py`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(Body):
    error: str = Field(description="what was wrong with the request, naming the input and the fix")


class CreateSessionForm(Body):
    """multipart/form-data fields of POST /api/sessions (all optional)."""

    portrait: bytes | None = Field(None, description="portrait image file (PNG/JPEG); default: the bundled portrait",
                                   json_schema_extra={"format": "binary"})
    animator: str | None = Field(None, description="animator name (default: animation.model)")
    driver: Literal["browser", "text", "audio", "none"] = "browser"
    output_size_px: int | None = Field(None, ge=64, le=2048, description="output frame side in pixels (even)")
    background: str | None = Field(None, description="keep | blur | color:#RRGGBB | transparent (default: "
                                   "animation.background); a picture: the background_image file")
    background_image: bytes | None = Field(None, description="a picture to show behind the person (PNG/JPEG), "
                                           "scaled to cover the frame", json_schema_extra={"format": "binary"})


class SessionCreated(Body):
    id: str
    token: str = Field(description="the session's control token: send it as 'Authorization: Bearer ...' or ?token=")
    viewer_token: str = Field(description="opens the viewer page only")
    viewer_url: str
    studio_url: str


class Latency(Body):
    p50: float | None = None
    p95: float | None = None


class Controls(Body):
    motion_mode: Literal["relative", "absolute"]
    mouth_owner: Literal["audio", "webcam"]
    pose_gain: float
    expression_gain: float


class ExpressionRequest(Body):
    name: str = Field(description="smile, surprise, anger, sadness, or none (eases back to the driver's own face)")
    intensity: float = Field(0.8, ge=0, le=1)
    hold_s: float | None = Field(None, gt=0, le=3600, description="ease out again after this many seconds (default: hold)")


class ExpressionState(Body):
    name: str = Field(description="the expression asked for now (none when none is, or its hold ended)")
    intensity: float
    shown: float = Field(description="how far it shows now (it eases in and out over 0.25 s)")


class BackgroundRequest(Body):
    background: str = Field(description="keep | blur | color:#RRGGBB | transparent", examples=["blur", "color:#1E90FF"])


class BackgroundState(Body):
    background: str = Field(description="the background shown now")
    transparent: bool = Field(description="the stream carries the key colour behind the person")


class SessionInfo(Body):
    id: str
    state: str
    reason: str | None = None
    driver: str
    animator: str | None = None
    viewers: int
    fps: float
    latency_ms: Latency = Field(description="capture-to-output latency")
    drops: int
    frames: int
    cpu_ms_per_frame: float = Field(description="busy time of the session's stages per frame (p50 sum)")
    tts_queue: int
    speaking: bool
    audio_buffer_ms: float
    audio_underruns: int
    controls: Controls
    expression: ExpressionState | None = Field(None, description="null for an animator without expressions")
    background: str = Field("keep", description="the background shown now (a picture shows as image:...)")
    transparent: bool = Field(False, description="animation.background is transparent: the stream carries key_color "
                                                 "behind the person, and the viewer page keys it out to alpha")
    key_color: str = Field("#00B140", description="the key colour behind the person (#RRGGBB)")
    created_at: float
    idle_s: float


class SessionList(Body):
    sessions: list[SessionInfo]


class SayRequest(Body):
    text: str = Field(description="up to 5,000 characters")
    voice: str = Field("en-us", description="a voice of the TTS engine (espeak: a language code)")


class SayAccepted(Body):
    queued: int = Field(description="utterances waiting or playing, this one included")


class Interrupted(Body):
    interrupted: bool = True


class OfferRequest(Body):
    type: Literal["offer"]
    sdp: str
    role: Literal["studio", "viewer"] = Field("viewer", description="studio: the offer sends camera and microphone")


class OfferAnswer(Body):
    type: Literal["answer"]
    sdp: str


class ControlsRequest(Body):
    reset_neutral: bool = Field(False, description="re-take the neutral face from the current camera frame")
    motion_mode: Literal["relative", "absolute"] | None = None
    mouth_owner: Literal["audio", "webcam"] | None = None
    pose_gain: float | None = Field(None, ge=0, le=3)
    expression_gain: float | None = Field(None, ge=0, le=3)


class Health(Body):
    status: Literal["ok"]
    sessions: int
    engine: str


class Ready(Body):
    ready: bool
    reason: str | None = None
