"""Wire model of a last-rendered preview: a small JPEG or WebP thumbnail of a frame a render task saved.

The Worker makes it, its update buffer carries it to the Manager (newest per task), the Manager keeps the latest
per job and per worker and passes it on with its update batches, the Server keeps the latest per job and worker.
The image travels as base64 in JSON (it rides the same durable paths as every other update).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from services.protocol.common import Id, Int, PathText, ReportedTime, ResponseModel, WireModel, WorkerIdText
from services.protocol.farm import ReportedName

PREVIEW_MAX_PIXELS = 512  # the longer side of a thumbnail
PREVIEW_MAX_BYTES = 256 * 1024  # the encoded image; the Worker lowers the quality until it fits
PREVIEW_TYPES = ("image/jpeg", "image/webp")
PREVIEWS_PER_BATCH = 16  # per Manager update batch: a batch stays well under the Server's body limit
_B64_MAX_CHARS = (PREVIEW_MAX_BYTES + 2) // 3 * 4


def _decode(value: Any) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        if len(value) > _B64_MAX_CHARS:
            raise ValueError(f"more than {PREVIEW_MAX_BYTES} bytes of image")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not base64 (RFC 4648, no line breaks)") from None
    else:
        raise ValueError("the image must be a base64 string")
    if not data:
        raise ValueError("the image is empty")
    if len(data) > PREVIEW_MAX_BYTES:
        raise ValueError(f"more than {PREVIEW_MAX_BYTES} bytes of image")
    return data


ImageBytes = Annotated[
    bytes,
    BeforeValidator(_decode),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "contentEncoding": "base64",
            "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
            "minLength": 4,
            "maxLength": _B64_MAX_CHARS,
        }
    ),
]
"""An encoded image: bytes in Python, base64 in JSON, at most PREVIEW_MAX_BYTES."""


class Preview(WireModel):
    """A thumbnail of one saved frame, and where the full-size frame is (as the Worker saw the path)."""

    content_type: Literal["image/jpeg", "image/webp"]
    width: Int = Field(ge=1, le=PREVIEW_MAX_PIXELS)
    height: Int = Field(ge=1, le=PREVIEW_MAX_PIXELS)
    data: ImageBytes
    frame_path: PathText
    frame_width: Int | None = Field(default=None, ge=1, le=1_000_000)  # the full frame's size
    frame_height: Int | None = Field(default=None, ge=1, le=1_000_000)


def is_image(content_type: str, data: bytes) -> bool:
    """Whether the bytes begin as an image of the type they are said to be (a JPEG's marker, a WebP's RIFF header).

    Not a decoder: a preview is served with nosniff under its stated type, so what matters is that what claims
    to be a JPEG is not an HTML page or a script a hostile Worker or Manager passed off as one.
    """
    if content_type == "image/jpeg":
        return data[:3] == b"\xff\xd8\xff"
    if content_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return False


class PreviewReport(WireModel):
    """Manager → Server: a worker's latest preview, the latest of its job too when nothing newer came."""

    task_id: Id
    job_id: Id
    worker_id: WorkerIdText  # as the Server's workers table holds them
    worker_name: ReportedName
    time: ReportedTime
    preview: Preview


class LastRendered(ResponseModel):
    """What a client learns about a job's or a worker's last-rendered image (the image is a separate GET)."""

    job_id: int
    task_id: int
    worker_id: str
    worker_name: str
    time: datetime
    content_type: str
    width: int
    height: int
    frame_path: str
    frame_width: int | None = None
    frame_height: int | None = None
    # grows with every new image of this job or worker: a client fetches the image when it changes
    version: int = 0
