"""The avatar template for the lip-sync U-Net: a talking video's frames, crop boxes and audio windows.

`prepare_template(video, config)` decodes the video and its audio with PyAV,
tracks the face with our FaceTracker, and stores (under config.cache.dir,
keyed by the video's content hash) the frames as JPEG bytes, the landmarks,
the smoothed crop boxes and the per-frame mel windows. Frames without a face
are skipped and counted; more than 20 % without a face, or no audio track, is
a one-line TemplateError. `AvatarTemplate.load(path)` reads it back (frames
decoded on demand, so a long video does not fill the memory).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src.animation.lipsync_unet.audio_windows import mel_windows
from src.animation.lipsync_unet.geometry import box_from_landmarks, jaw_per_eye_ratio, smooth_boxes
from src.core.config import AppConfig, resolve_path
from src.core.errors import UserError

log = logging.getLogger(__name__)

TEMPLATE_FILE = "template.npz"
META_FILE = "template.json"
FORMAT_VERSION = 4  # 3 had boxes 1.3 x wider
MAX_FACELESS_FRACTION = 0.20
MAX_SIDE_PX = 1024  # frames are stored at most this large
JPEG_QUALITY = 95
CLOSED_FRACTION = 0.2  # the most closed-mouth fifth of the frames serve as references
OPEN_MARGIN_IOD = 0.06  # a frame's lips this much (inter-ocular units) further apart than at rest: open


class TemplateError(UserError, ValueError):
    """A talking video that cannot become an avatar template (no audio, no face, unreadable)."""


def file_digest(path: Path, n: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def decode_video(path: Path, sample_rate_hz: int = 16000) -> tuple[list[np.ndarray], float, np.ndarray]:
    """(BGR frames, fps, mono float32 audio at sample_rate_hz) of a video file, via PyAV."""
    import av

    label = f"video {path}"
    if not path.is_file():
        raise TemplateError(f"{label}: not found; pass an existing talking-head video (mp4 with sound)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise TemplateError(f"{label}: cannot be opened ({type(exc).__name__}); use an mp4/mkv/mov video with sound") from None
    with container:
        if not container.streams.video:
            raise TemplateError(f"{label}: has no video track; use a talking-head video with sound")
        if not container.streams.audio:
            raise TemplateError(f"{label}: has no audio track; the lip-sync model needs the speech: use a video with sound")
        vstream = container.streams.video[0]
        fps = float(vstream.average_rate or vstream.guessed_rate or 25.0)
        frames: list[np.ndarray] = []
        for frame in container.decode(video=0):
            img: np.ndarray = frame.to_ndarray(format="bgr24")
            h, w = img.shape[:2]
            if max(h, w) > MAX_SIDE_PX:
                k = MAX_SIDE_PX / max(h, w)
                img = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
            frames.append(img)
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate_hz)
        chunks: list[np.ndarray] = []
        for aframe in container.decode(audio=0):
            for out in resampler.resample(aframe):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if not frames:
        raise TemplateError(f"{label}: no decodable video frames; re-encode it (e.g. ffmpeg -i in.mp4 out.mp4)")
    if len(audio) < sample_rate_hz // 10:
        raise TemplateError(f"{label}: its audio track is empty; use a video with the person's speech")
    return frames, fps, audio


def track_faces(frames: list[np.ndarray], config: AppConfig) -> tuple[list[int], np.ndarray]:
    """(indices of frames with a face, their landmarks [n, 478, 3])."""
    from src.capture.face_tracker import FaceTracker

    kept: list[int] = []
    lms: list[np.ndarray] = []
    with FaceTracker(config.tracking, static_image_mode=False, max_faces=1) as tracker:
        for i, img in enumerate(frames):
            faces = tracker.process(img)
            if faces:
                kept.append(i)
                lms.append(faces[0].landmarks)
    return kept, np.stack(lms) if lms else np.zeros((0, 478, 3), np.float32)


def template_dir_for(video: Path, config: AppConfig) -> Path:
    return resolve_path(config.cache.dir) / "lipsync_templates" / f"{file_digest(video)}-v{FORMAT_VERSION}"


def prepare_template(video_path: str | Path, config: AppConfig, out_dir: str | Path | None = None, force: bool = False) -> Path:
    """Build (or reuse) the avatar template of a talking video; returns its directory."""
    video = Path(video_path).expanduser()
    if not video.is_file():
        raise TemplateError(f"video {video}: not found; pass an existing talking-head video (mp4 with sound)")
    target = Path(out_dir).expanduser() if out_dir else template_dir_for(video, config)
    if not force and _valid(target):
        return target
    frames, fps, audio = decode_video(video)
    kept, lms = track_faces(frames, config)
    faceless = len(frames) - len(kept)
    if faceless > MAX_FACELESS_FRACTION * len(frames):
        raise TemplateError(
            f"video {video}: no face found in {faceless} of {len(frames)} frames (> {MAX_FACELESS_FRACTION:.0%}); "
            "use a video where one face is visible throughout"
        )
    if faceless:
        log.info("template %s: skipped %d of %d frames without a face", video.name, faceless, len(frames))
    ratio = jaw_per_eye_ratio(lms)
    boxes = smooth_boxes(np.stack([box_from_landmarks(lm, ratio) for lm in lms]))
    mels = mel_windows(audio, fps, len(frames))[kept]
    blobs = [cv2.imencode(".jpg", frames[i], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].reshape(-1) for i in kept]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / (TEMPLATE_FILE + ".tmp.npz")
    np.savez(
        tmp,
        jpeg=np.concatenate(blobs),
        offsets=offsets,
        frame_index=np.asarray(kept, np.int64),
        landmarks=lms.astype(np.float32),
        boxes=boxes.astype(np.float32),
        mels=mels.astype(np.float32),
    )
    tmp.replace(target / TEMPLATE_FILE)
    meta = {"version": FORMAT_VERSION, "video": str(video), "fps": fps, "frames": len(frames), "kept": len(kept), "skipped": faceless}
    (target / META_FILE).write_text(json.dumps(meta, indent=2))
    return target


def _valid(target: Path) -> bool:
    try:
        meta = json.loads((target / META_FILE).read_text())
        with np.load(target / TEMPLATE_FILE, allow_pickle=False) as z:
            return meta.get("version") == FORMAT_VERSION and {"jpeg", "offsets", "boxes", "mels"} <= set(z.files)
    except (OSError, ValueError, KeyError):
        return False


def mouth_openings(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap / inter-ocular distance per frame (MediaPipe landmarks)."""
    from src.core.face_mesh import measure

    return np.array([measure(lm.astype(np.float64)).mouth_open for lm in landmarks], np.float32)


def closed_frames(mouth_open: np.ndarray) -> np.ndarray:
    """Indices of the frames with the most closed mouth (the lowest CLOSED_FRACTION, at least one).

    The U-Net's reference image is always one of these, in training and at run time: a reference
    whose mouth is closed carries appearance (lips, skin, light) but no mouth shape the network could
    copy instead of following the audio (with a random reference, copying is what a briefly trained
    network does at run time, where SyncTalk_2D feeds the frame itself).
    """
    if len(mouth_open) == 0:
        return np.zeros(0, np.int64)
    k = max(1, int(round(CLOSED_FRACTION * len(mouth_open))))
    return np.sort(np.argsort(mouth_open, kind="stable")[:k]).astype(np.int64)


@dataclass
class AvatarTemplate:
    """A prepared template: frame i has crop box boxes[i] and mel window mels[i]."""

    path: Path
    fps: float
    boxes: np.ndarray  # [n, 4] float32
    landmarks: np.ndarray  # [n, 478, 3]
    mels: np.ndarray  # [n, 1, 80, 16]
    skipped: int
    _jpeg: np.ndarray
    _offsets: np.ndarray

    def __post_init__(self) -> None:
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.mouth_open = mouth_openings(self.landmarks)
        self.closed = closed_frames(self.mouth_open)
        # Per frame, the nearest closed-mouth frame in time (a similar pose): the network's reference.
        n = len(self.boxes)
        self.reference_index = self.closed[np.argmin(np.abs(np.arange(n)[:, None] - self.closed[None, :]), axis=1)] if n else self.closed
        # Frames whose own mouth is visibly open (a talking template): in silence the network closes them.
        rest = float(np.median(self.mouth_open[self.closed])) if n else 0.0
        self.open_mouth = self.mouth_open > rest + OPEN_MARGIN_IOD
        self.open_mouth[self.closed] = False  # the references are closed by definition

    @classmethod
    def load(cls, path: str | Path) -> AvatarTemplate:
        p = Path(path).expanduser()
        if p.is_file() and p.name == TEMPLATE_FILE:
            p = p.parent
        if not _valid(p):
            raise TemplateError(f"avatar template {p}: missing or incomplete; build it with `main.py prepare --video TALKING.mp4`")
        meta = json.loads((p / META_FILE).read_text())
        with np.load(p / TEMPLATE_FILE, allow_pickle=False) as z:
            return cls(p, float(meta["fps"]), z["boxes"], z["landmarks"], z["mels"], int(meta.get("skipped", 0)), z["jpeg"], z["offsets"])

    def __len__(self) -> int:
        return len(self.boxes)

    def frame(self, i: int) -> np.ndarray:
        """Frame i (BGR uint8), decoded on demand; a small LRU keeps recent ones."""
        img = self._cache.get(i)
        if img is None:
            img = cv2.imdecode(self._jpeg[self._offsets[i] : self._offsets[i + 1]], cv2.IMREAD_COLOR)
            self._cache[i] = img
            if len(self._cache) > 64:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(i)
        return img

    def pingpong(self, k: int) -> int:
        """Template index for output frame k: forward, then backward, then forward... (no jump at the ends)."""
        n = len(self)
        if n <= 1:
            return 0
        period = 2 * (n - 1)
        r = k % period
        return r if r < n else period - r
