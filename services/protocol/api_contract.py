"""What both services' HTTP APIs promise alike: the error body of every error (500s included), the error
statuses and schema their OpenAPI documents declare, and an API docs page that needs no network."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from services.protocol.common import ID_MAX, ErrorResponse
from services.protocol.terminal_text import escaped

log = logging.getLogger(__name__)

_DESCRIPTIONS = {
    400: "The request could not be read (e.g. a body that is not JSON where JSON is expected)",
    401: "No credentials, or credentials this service does not accept (`WWW-Authenticate` says which kind)",
    403: "The credentials are valid but their role may not do this",
    404: "No such object (an id out of range is a 422 instead)",
    409: "The object's state does not allow this now",
    413: "The request body is over the service's limit (counted on the bytes read, chunked or not)",
    422: "A field is missing, malformed or out of range; `errors` names each field",
    429: "Too many failed attempts from this client or for this user; `Retry-After` says when to try again",
    500: "An error inside the service; the body still has the documented shape",
    503: "A service this one depends on (the Manager's Server) cannot be reached now",
}
_WRITES = {"post", "put", "patch", "delete"}
_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")  # what an Allow header may name (OPTIONS: none)

Location = tuple[str | int, ...]
"""Where a field is in a request: keys and list indexes, from the top (a pydantic error's `loc`)."""


def dotted(loc: Location) -> str:
    """A field as the Server names it in errors: `settings.command.1`."""
    return ".".join(str(p) for p in loc) or "body"


FIELD_NAME_SHOWN = 60  # of a field name an error repeats: an unknown key is the client's text, of any length


def field_part(part: object) -> str:
    """One step of a field's path as an error names it: the client's unknown key (a 100,000-character one made a
    200 KB answer, twice over) cut, and its control characters and bidirectional overrides written out."""
    text = escaped(str(part))
    return text if len(text) <= FIELD_NAME_SHOWN else text[: FIELD_NAME_SHOWN - 1] + "…"


def indexed(loc: Location) -> str:
    """A field as the Manager names it in errors: `updates[0].log_lines[2]`."""
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else (f".{field_part(part)}" if field else field_part(part))
    return field or "body"


_FASTAPI_BODY_UNREADABLE = "There was an error parsing the body"
UNREADABLE_BODY = (
    "malformed JSON: not readable as JSON (it must be UTF-8, uncompressed, with numbers of at most "
    "4300 digits and nested less than a thousand levels deep)"
)
ERRORS_SHOWN = 50  # a body of half a million unknown keys made an answer of 50 MB, one error each, twice over


def more_errors(total: int) -> str:
    """What an error answer's `detail` says of the errors it leaves out of its list ("" when none are)."""
    left = total - ERRORS_SHOWN
    return f"; and {left} more error{'s' if left != 1 else ''}" if left > 0 else ""


def error_message(err: Mapping[str, Any]) -> str:
    """A pydantic error's message as the services say it: without pydantic's "Value error, " before a check's own."""
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def malformed_json(err: Mapping[str, Any]) -> str | None:
    """The message of a body that is not JSON at all (its error names `body`, not pydantic's byte offset), else
    None."""
    if err.get("type") != "json_invalid":
        return None
    return f"malformed JSON: {err.get('ctx', {}).get('error', error_message(err))}"


SEND_AS_JSON = "send the body as JSON (Content-Type: application/json)"


def body_not_sent_as_json(request: Request, err: Mapping[str, Any]) -> bool:
    """Whether `err` is FastAPI's for a whole body it did not read as JSON because the request did not say it was
    (no Content-Type, `text/plain`): "Input should be a valid dictionary" named nothing the client could fix."""
    if tuple(err.get("loc", ())) != ("body",):
        return False
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return not (kind.endswith("/json") or kind.endswith("+json"))  # FastAPI's own test of a JSON body


def error_detail(errors: list[tuple[str, str]], total: int) -> str:
    """An error answer's `detail`: the listed (field, message) pairs, and how many more were left out of the list."""
    return "; ".join(f"{field}: {message}" for field, message in errors) + more_errors(total)


def error_json(
    status: int, detail: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    errors = [{"field": field, "message": detail}] if field else []
    return JSONResponse({"detail": detail, "errors": errors}, status_code=status, headers=headers)


def install_error_shape(app: FastAPI) -> None:
    """Plain HTTP errors (404 for an unknown path, 405, 413) and unexpected exceptions get the documented body."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return method_not_allowed(request.scope, request.app)
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_UNREADABLE:
            # FastAPI's answer when its JSON parse raises something other than a decode error (nesting too deep,
            # a number too long, bytes that are not UTF-8): a malformed body like any other, named as such
            body = {"detail": f"body: {UNREADABLE_BODY}", "errors": [{"field": "body", "message": UNREADABLE_BODY}]}
            return JSONResponse(body, status_code=422)
        # a path no route takes names the path: a client's mistyped address, told apart from an unknown id
        field = "path" if exc.status_code == 404 and exc.detail == "Not Found" else None
        return error_json(exc.status_code, str(exc.detail), field, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("error inside %s %s", request.method, request.url.path, exc_info=exc)
        return error_json(500, "an error inside the service; its log has the details")


def allowed_methods(scope: Scope, app: FastAPI) -> str:
    """What a 405's `Allow` names: every method the path is taken with. Starlette names only the first matching
    route's, and FastAPI makes a route per method (`GET` and `POST /jobs`), so `OPTIONS /jobs` was told only
    `GET`. A path the API document has as it is (`/jobs/bulk`, though `/jobs/{job_id}` matches it too) takes
    the methods the document gives it, as clients read it; any other is asked of each route with each method, as
    the router asks (FastAPI nests included routers)."""
    document = app.openapi().get("paths", {}).get(scope["path"])
    if document is not None:
        taken = {m.upper() for m in document} & set(_METHODS)
    else:
        taken = {
            method
            for method in _METHODS
            if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.routes)
        }
    if "GET" in taken:
        taken.add("HEAD")  # answered as GET is (head_as_get.py)
    return ", ".join(sorted(taken))


def method_not_allowed(scope: Scope, app: FastAPI, headers: Mapping[str, str] = {}) -> JSONResponse:
    allow = allowed_methods(scope, app)
    return error_json(
        405, f"{scope['method']} is not allowed here; this path takes {allow}", "method", {**headers, "Allow": allow}
    )


def _statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from what it takes and whether it is secured."""
    codes = {500}
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if params or has_body:
        codes.add(422)
    if has_body or method in _WRITES:
        codes |= {400, 413, 422}
    if operation.get("security"):
        codes |= {401, 403, 429}
    if any(p.get("in") == "path" for p in params) or method in _WRITES:
        codes.add(404)
    if method in _WRITES:
        codes.add(409)
    return codes


def document_errors(
    app: FastAPI,
    extra: dict[str, set[int]] | None = None,
    schemes: dict[str, dict[str, Any]] | None = None,
    secured_by: Callable[[str], str | None] | None = None,
) -> None:
    """Makes the app's OpenAPI document declare its real error body and statuses instead of FastAPI's default.

    `extra` adds statuses per "METHOD /path" where the rule of thumb in `_statuses` falls short. `schemes`
    and `secured_by` (path -> scheme name) declare security that routes check by hand rather than through
    FastAPI's security dependencies.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in error_schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas["ErrorResponse"] = error_schema
        ref = {"$ref": "#/components/schemas/ErrorResponse"}
        if schemes:
            doc["components"].setdefault("securitySchemes", {}).update(schemes)
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                scheme = secured_by(path) if secured_by else None
                if scheme:
                    operation["security"] = [{scheme: []}]
                codes = _statuses(method, operation) | (extra or {}).get(f"{method.upper()} {path}", set())
                responses = operation.setdefault("responses", {})
                for code in sorted(codes):
                    entry = responses.setdefault(str(code), {"description": _DESCRIPTIONS[code]})
                    entry["content"] = {"application/json": {"schema": ref}}
                    if code == 429:
                        entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        _exact_bounds(doc)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _exact_bounds(node: Any) -> None:
    """FastAPI's document model keeps `minimum` and `maximum` as floats where a field's type is not plainly an
    integer (an optional id, a list's items): 2^63 - 1 came out as 2^63, which the service refuses. Each bound a
    float cannot hold exactly is put back as the integer it stands for."""
    if isinstance(node, dict):
        for key in ("minimum", "maximum"):
            if isinstance(value := node.get(key), float) and value in _EXACT:
                node[key] = _EXACT[value]
        for child in node.values():
            _exact_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_bounds(child)


_EXACT = {float(n): n for n in (ID_MAX, -ID_MAX - 1)}


def serve_docs_offline(app: FastAPI, prefix: str) -> None:
    """The Swagger UI page at `{prefix}/docs`, its scripts served by the service itself (no CDN)."""
    import fastapi_offline  # ships the Swagger UI files

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount(f"{prefix}/docs-assets", StaticFiles(directory=static), name="docs-assets")

    @app.api_route(f"{prefix}/docs-assets", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                   include_in_schema=False)  # fmt: skip
    async def no_asset() -> None:
        # the folder itself is no file: without this, Starlette's slash redirect answered an empty 307 (to any
        # method, with or without a token) where every other path no route takes is a 404 in the errors' shape
        raise StarletteHTTPException(status_code=404, detail="Not Found")

    openapi_url = app.openapi_url or f"{prefix}/openapi.json"

    @app.get("/", include_in_schema=False)
    async def root() -> PlainTextResponse:
        # a newcomer opens the address the banner printed in a browser: say what is there, not a bare 404
        return PlainTextResponse(
            f"{app.title} {app.version}: an HTTP API, under {prefix} (its reference and a form to try each call: "
            f"{prefix}/docs). The farm is seen and run from the desktop app (`tablao`) or the command line "
            "(`tablao --help`).\n"
        )

    @app.get(f"{prefix}/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{prefix}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{prefix}/docs-assets/favicon.png",
        )
