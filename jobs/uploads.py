"""Images people upload to explore: checked by their content, normalized, stored once.

An upload is read with Pillow, never trusted by its name or its declared type: its format
must be JPEG, PNG or WebP, its bytes and pixels under the limits (checked from the header,
before any pixel is decoded: no decompression bomb), and it must decode whole. It is stored
turned upright (EXIF orientation), in RGB, without its metadata, as PNG; its sha256 is that
of the stored file, so the same picture uploaded twice is the same image.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

__all__ = ["Checked", "image_check", "upload_read"]

FORMATS = ("JPEG", "PNG", "WEBP")  # the only parsers that ever read an upload
# MPO: a JPEG with a second frame, as phone cameras write them (Pillow's JPEG parser reads
# it); its first frame is the picture.
ACCEPTED = (*FORMATS, "MPO")
STORED_SIDE = 512  # the stored copy's longer side at most: explorations see the model's size
# The longer side at most, read from the header as the pixel count is: Pillow keeps a few
# bytes per row, so a 1 x 39,000,000 PNG (76 KB, under the pixel limit) held 1.2 GB.
MAX_SIDE = 16_384


@dataclass(frozen=True)
class Checked:
    content: bytes  # PNG
    sha256: str
    width: int
    height: int


def _refuse(message: str) -> ValidationError:
    return ValidationError({"image": message})


def upload_read(upload: Any) -> bytes:
    """An uploaded file's bytes, refused from its size before it is read (Django spools a
    large body to disk; this keeps it out of memory)."""
    limit = settings.MICROSCOPE_UPLOAD_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise _refuse(f"the file is {upload.size:,} bytes; the limit is {limit:,}")
    return upload.read(limit + 1)


def _rgb(image: Any) -> Any:
    """``image`` in 8-bit RGB. A 16-bit grey PNG (Pillow's ``I;16`` or ``I``) is scaled
    from 0-65535: Pillow's own conversion clips it at 255, and stored it nearly all white."""
    if image.mode.startswith("I"):
        image = image.convert("I").point(lambda value: value * (255 / 65535) + 0.5).convert("L")
    return image.convert("RGB")


def image_check(data: bytes) -> Checked:
    """The upload, checked and normalized; raises ValidationError on the field ``image``."""
    # Imported here: the web process loads Pillow with its first upload, not for every page.
    from PIL import Image, ImageOps, UnidentifiedImageError

    limit = settings.MICROSCOPE_UPLOAD_MAX_BYTES
    if not data:
        raise _refuse("the file is empty")
    if len(data) > limit:
        raise _refuse(f"the file is {len(data):,} bytes; the limit is {limit:,}")
    pixels = settings.MICROSCOPE_UPLOAD_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                if image.format not in ACCEPTED:
                    raise _refuse(f"a {image.format} image; send JPEG, PNG or WebP")
                width, height = image.size
                if width * height > pixels:
                    raise _refuse(
                        f"{width}x{height} is {width * height:,} pixels; the limit is {pixels:,}"
                    )
                if max(width, height) > MAX_SIDE:
                    raise _refuse(f"{width}x{height}: a side is at most {MAX_SIDE:,} pixels")
                image.load()
                upright = _rgb(ImageOps.exif_transpose(image))
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(f"too many pixels; the limit is {pixels:,}") from None
    except UnidentifiedImageError:
        raise _refuse("not an image this site reads (JPEG, PNG or WebP)") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt
        raise _refuse(f"the image could not be decoded ({exc})") from None
    upright.thumbnail((STORED_SIDE, STORED_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    upright.save(buffer, format="PNG")  # no EXIF, no ICC, no text chunks
    content = buffer.getvalue()
    return Checked(content, hashlib.sha256(content).hexdigest(), *upright.size)
