"""The add-on's side of the Tablao Server API, in plain Python (urllib, json) so it runs in Blender's Python.

Nothing here imports bpy: the panel and operators gather values from Blender and call these functions, and
the tests can call them from any Python 3.10+. Every failure becomes a `FarmError` with a message a person can
act on, and the Server's field errors keyed by field name, so the panel can show them next to the field.
"""

import http.client
import json
import posixpath
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_SECONDS = 15.0
# the Server's field names (after `settings.`) → the add-on property that sets them
FIELD_OF_SETTING = {
    "blendfile": "blendfile",
    "frames": "frames",
    "frame_start": "frames",
    "frame_end": "frames",
    "chunk_size": "chunk_size",
    "output_path": "output_path",
    "preview_path": "output_path",
    "priority": "priority",
    "tags": "tags",
    "name": "job_name",
    "tiles_x": "tiles",
    "tiles_y": "tiles",
    "chunks": "sample_chunks",
    "samples": "sample_chunks",
    "caches": "bake_target",
}


class FarmError(Exception):
    """A request that did not succeed: `message` for the status line, `fields` for messages by property;
    `unanswered`: it may have been done, its answer was lost (a timeout, a dropped connection, a proxy's 502)."""

    def __init__(self, message: str, fields: dict[str, str] | None = None, unanswered: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.unanswered = unanswered


@dataclass
class Connection:
    url: str
    token: str

    def api(self, path: str) -> str:
        return self.url.rstrip("/") + "/api/v1" + path


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FarmError(f"The Server URL {url!r} is not an http:// or https:// address, e.g. http://farm:8470")


def call(conn: Connection, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """One JSON request to the Server; the decoded answer, or FarmError saying what went wrong."""
    _check_url(conn.url)
    if not conn.token.strip():
        raise FarmError("No API token: set one in the add-on preferences (Edit > Preferences > Add-ons > Tablao)")
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(conn.api(path), data=data, method=method)
    req.add_header("Authorization", f"Bearer {conn.token.strip()}")
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise _http_error(conn, exc) from None
    except urllib.error.URLError as exc:  # no connection made: nothing was sent
        raise FarmError(f"Cannot reach the Tablao Server at {conn.url}: {exc.reason}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as exc:  # sent, and no whole answer (cut off too)
        raise FarmError(
            f"No answer from the Tablao Server at {conn.url}: {exc or type(exc).__name__}", unanswered=True
        ) from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise FarmError(f"{conn.url} answered with something other than JSON: is it a Tablao Server?") from None


def _http_error(conn: Connection, exc: urllib.error.HTTPError) -> FarmError:
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        payload = {}
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if exc.code == 401:
        return FarmError(f"The Server at {conn.url} refused the API token: check it in the add-on preferences")
    if exc.code == 404 and not isinstance(detail, str):
        return FarmError(f"{conn.url} has no Tablao API here (HTTP 404): check the Server URL")
    fields: dict[str, str] = {}
    errors = payload.get("errors") if isinstance(payload, dict) else None
    for err in errors or []:
        if isinstance(err, dict) and isinstance(err.get("field"), str):
            name = err["field"].removeprefix("settings.").split(".")[0]
            prop = FIELD_OF_SETTING.get(name, name)
            fields[prop] = "; ".join(filter(None, [fields.get(prop), str(err.get("message", ""))]))
    text = detail if isinstance(detail, str) else exc.reason
    if exc.code in (502, 503, 504) or (exc.code == 409 and IDEMPOTENCY_KEY in fields):
        # a proxy with no Server behind it, or the job an earlier try made still being stored
        return FarmError(f"The Server could not answer now: {text} (HTTP {exc.code})", unanswered=True)
    return FarmError(f"The Server refused: {text} (HTTP {exc.code})", fields)


def who_am_i(conn: Connection) -> tuple[str, str]:
    me = call(conn, "GET", "/me")
    return str(me["name"]), str(me["role"])


def farm_variables(conn: Connection) -> dict[str, dict[str, str]]:
    answer = call(conn, "GET", "/farm/variables")
    return dict(answer.get("variables") or {}) if isinstance(answer, dict) else {}


IDEMPOTENCY_KEY = "Idempotency-Key"
RETRY_AFTER_SECONDS = 1.0  # one more try after a lost answer, before the artist is told
# the last submission whose answer was lost: its body (JSON) and key, so that submitting the same job again gets
# the job the Server may have made then, not a second one (the Server keeps each job's key, docs/api.md)
_unanswered: dict[str, str] = {}


def submit(conn: Connection, body: dict[str, Any]) -> dict[str, Any]:
    """The job the Server made; a lost answer is asked again once, and a later submit of the same body too, with
    the same Idempotency-Key, so one job is made however often the artist presses Submit."""
    text = json.dumps(body, sort_keys=True)
    remembered = _unanswered.get(text)
    key = remembered or str(uuid.uuid4())
    _unanswered.clear()
    # a try may have reached the Server (this press's, or an earlier one's whose key this is): the job may be
    # made, whatever the last try met, so the key is kept until the Server answers
    sent = remembered is not None
    for last_try in (False, True):
        try:
            job = call(conn, "POST", "/jobs", body, headers={IDEMPOTENCY_KEY: key})
            break
        except FarmError as exc:
            sent = sent or exc.unanswered
            if exc.unanswered and not last_try:
                time.sleep(RETRY_AFTER_SECONDS)
                continue
            if not sent:
                raise
            _unanswered[text] = key
            message = f"{exc.message}. Submit again: the job will not be made twice"
            raise FarmError(message, exc.fields, unanswered=True) from None
    if not isinstance(job, dict) or "id" not in job:
        raise FarmError("The Server accepted the job but its answer holds no job id")
    return job


def current_platform() -> str:
    """The platform names path variables use: linux, windows, macos."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _norm(path: str) -> str:
    return path.replace("\\", "/").rstrip("/")


def to_farm_path(path: str, variables: dict[str, dict[str, str]], platform: str) -> str | None:
    """`path` rewritten as `{name}/rest` under the farm variable whose folder holds it (longest first).

    Paths that already start with `{name}` for a known variable are returned unchanged; None when the path
    lies under no variable's folder for this platform, i.e. the farm cannot be known to reach it.
    """
    for name in variables:
        if path.startswith("{" + name + "}"):
            return path
    candidates: list[tuple[int, str, str]] = []
    for name, table in variables.items():
        root = table.get(platform, table.get("all"))
        if root:
            candidates.append((len(_norm(root)), name, _norm(root)))
    target = _norm(path)
    case_blind = platform in ("windows", "macos")
    for _, name, root in sorted(candidates, reverse=True):
        a, b = (target.lower(), root.lower()) if case_blind else (target, root)
        if a == b or a.startswith(b + "/"):
            rest = target[len(root) :].lstrip("/")
            return "{" + name + "}" + ("/" + rest if rest else "")
    return None


def describe_roots(variables: dict[str, dict[str, str]], platform: str) -> str:
    roots = [f"{{{n}}} = {t.get(platform, t.get('all', '?'))}" for n, t in variables.items()]
    return ", ".join(roots) or "none"


@dataclass
class JobRequest:
    """What the panel gathered, in plain values; `job_body` turns it into the Server's job submission."""

    name: str
    job_type: str  # animation | still | bake
    blendfile: str
    output_path: str
    scene: str | None = None
    frame_start: int = 1
    frame_end: int = 250
    frame_step: int = 1
    frame_current: int = 1
    chunk_size: int = 1
    fps: float = 24.0
    image_format: str = "PNG"
    preview_video: bool = False
    priority: int = 50
    tags: list[str] = field(default_factory=list)
    # still
    still_split: str = "tiles"
    tiles_x: int = 2
    tiles_y: int = 2
    samples: int = 16
    sample_chunks: int = 4
    width: int = 1920
    height: int = 1080
    # bake
    bake_target: str = "point-cache"


def frames_text(start: int, end: int, step: int) -> str:
    if start == end:
        return str(start)
    return f"{start}-{end}" + (f"x{step}" if step > 1 else "")


def job_body(req: JobRequest) -> dict[str, Any]:
    settings: dict[str, Any]
    if req.job_type == "animation":
        output = req.output_path
        if "#" not in posixpath.basename(output.replace("\\", "/")):
            output = posixpath.join(output, "frame_####") if output.endswith(("/", "\\")) else output + "_####"
        settings = {
            "blendfile": req.blendfile,
            "frames": frames_text(req.frame_start, req.frame_end, req.frame_step),
            "chunk_size": req.chunk_size,
            "output_path": output,
            "format": req.image_format if req.image_format in ("PNG", "JPEG", "OPEN_EXR", "TIFF") else "PNG",
            "fps": req.fps,
            "preview_video": req.preview_video,
        }
        job_type = "blender-render"
    elif req.job_type == "still":
        fmt = req.image_format if req.image_format in ("PNG", "JPEG", "TIFF") else "PNG"
        ext = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif"}[fmt]
        output = req.output_path.replace("#", "")
        if not output.lower().endswith((ext, ".jpeg", ".tiff")):
            output = output.rstrip("/\\_") + ext
        settings = {
            "blendfile": req.blendfile,
            "frame": req.frame_current,
            "output_path": output,
            "format": fmt,
            "width": req.width,
            "height": req.height,
            "split": req.still_split,
        }
        if req.still_split == "tiles":
            settings.update(tiles_x=req.tiles_x, tiles_y=req.tiles_y)
        else:
            settings.update(samples=req.samples, chunks=req.sample_chunks)
        job_type = "blender-still"
    elif req.job_type == "bake":
        settings = {
            "blendfile": req.blendfile,
            "caches": [{"target": req.bake_target}],
            "frame_start": req.frame_start,
            "frame_end": req.frame_end,
        }
        job_type = "blender-bake"
    else:
        raise FarmError(f"Unknown job type {req.job_type!r}")
    if req.scene and job_type != "blender-bake":
        settings["scene"] = req.scene
    return {"name": req.name, "type": job_type, "settings": settings, "priority": req.priority, "tags": req.tags}


def parse_tags(text: str) -> list[str]:
    return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]


def job_link(job_id: int) -> str:
    """The link the desktop app opens on the job (where `tablao` is registered for tablao:// links)."""
    return f"tablao://job/{job_id}"


def open_hint(job_id: int) -> str:
    return f"open it with `tablao job {job_id}` or {job_link(job_id)}"
