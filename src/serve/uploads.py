"""Uploaded pictures (a portrait, a background): checked before anything decodes them, stored by content hash.

Empty, not an image, over `serve.max_upload_bytes` or `serve.max_upload_pixels` (read from
the header: a decompression bomb is refused before it is decoded) -> `UploadError` with
the HTTP status and a message naming the fix. A good file is stored under the cache
directory by its content hash, so `prepare`'s avatar cache applies to it as to any file.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings
from pathlib import Path

from src.core.config import AppConfig

SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


class UploadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_portrait(data: bytes, config: AppConfig, field: str = "portrait") -> str:
    """The image format of `data`, or UploadError naming the form `field`."""
    from PIL import Image, UnidentifiedImageError

    sc = config.serve
    if not data:
        raise UploadError(400, f"{field}: the file is empty; upload a PNG or JPEG picture")
    if len(data) > sc.max_upload_bytes:
        raise UploadError(413, f"{field}: {len(data)} bytes, over the limit of {sc.max_upload_bytes} "
                               "(serve.max_upload_bytes); upload a smaller image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
            w, h = img.size
            fmt = img.format or ""
    except Image.DecompressionBombError:
        raise UploadError(413, f"{field}: over {sc.max_upload_pixels // 1_000_000} megapixels "
                               "(a decompression bomb?); upload a smaller image") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UploadError(400, f"{field}: not an image this server can read; upload a PNG or JPEG picture") from None
    if w * h > sc.max_upload_pixels:
        raise UploadError(413, f"{field}: {w}x{h} is {w * h / 1e6:.0f} megapixels, over the limit of "
                               f"{sc.max_upload_pixels / 1e6:.0f} (serve.max_upload_pixels); upload a smaller image")
    if fmt not in SUFFIXES:
        raise UploadError(400, f"{field}: {fmt or 'unknown'} images are not supported; upload a PNG or JPEG picture")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.open(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - truncated or corrupt data
        raise UploadError(400, f"{field}: the image data is corrupt or truncated; upload the file again") from None
    return fmt


def store_portrait(data: bytes, config: AppConfig, field: str = "portrait") -> Path:
    """Check `data` (an upload in the form `field`) and store it by content hash; returns its path."""
    fmt = check_portrait(data, config, field)
    digest = hashlib.sha256(data).hexdigest()[:32]
    folder = Path(config.cache.dir).expanduser() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}{SUFFIXES[fmt]}"
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
