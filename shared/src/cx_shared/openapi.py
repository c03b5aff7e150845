"""The OpenAPI document tells what the API does: every error it can answer, as the problem
details it really sends, and the links from a resource's creation to its own operations.

FastAPI documents only the success and a JSON 422 of its own shape. Every service answers
errors as RFC 9457 problem details (application/problem+json), so this adds them once for
all: 401/403 where a bearer token is required, 404 where the path or a written body names a
resource, 409 where a write can meet a state that refuses it, 400 (not JSON) and 413 where a
body is taken, 422 everywhere, 429 (with Retry-After) where a rate limit applies: writes and
routes that need no sign-in, health and metrics excepted (cx_shared.rate_limit).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cx_shared.rate_limit import exempt

PROBLEM = {
    "type": "object", "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "rule": {"type": "string"}, "message": {"type": "string"}}}},
    },
}
WHY = {400: "the body is not JSON", 401: "no valid bearer token", 403: "the caller may not do this",
       404: "no such resource (or not the caller's)", 409: "the resource's state refuses it",
       413: "the body is too large", 422: "a parameter or the body breaks a rule (named in errors)",
       429: "a rate limit is reached: nothing was done; send it again after Retry-After seconds"}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}}
WRITES = {"post", "put", "patch", "delete"}


def codes(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    found = [422]
    if operation.get("security"):
        found += [401, 403]
    if "{" in path or (method in WRITES and "requestBody" in operation):
        found.append(404)  # the path's resource, or one the body names (a call, an organisation)
    if method in WRITES:
        found.append(409)
    if "requestBody" in operation:
        found += [400, 413]
    if (method in WRITES or not operation.get("security")) and not exempt(path):
        found.append(429)
    return sorted(found)


def declare_problems(document: dict[str, Any]) -> None:
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in codes(method, path, operation):
                responses[str(code)] = {"description": WHY[code], "content": problem,
                                        **({"headers": RETRY_AFTER} if code == 429 else {})}
    document["components"]["schemas"].pop("HTTPValidationError", None)
    document["components"]["schemas"].pop("ValidationError", None)


def declare_links(document: dict[str, Any]) -> None:
    """A creation at `/things` answers the id that `/things/{thing_id}...` operations take."""
    paths = document.get("paths", {})
    for path, operations in paths.items():
        create = operations.get("post")
        if create is None or "{" in path:
            continue
        success = next((r for code, r in create.get("responses", {}).items() if code.startswith("2")), None)
        if success is None:
            continue
        for target, target_operations in paths.items():
            names = re.fullmatch(re.escape(path) + r"/\{(\w+)\}(/.*)?", target)
            if not names:
                continue
            for method, operation in target_operations.items():
                name = f"{method.upper()} {target}"
                success.setdefault("links", {})[re.sub(r"\W+", "_", name).strip("_")] = {
                    "operationId": operation["operationId"],
                    "parameters": {names.group(1): f"$response.body#/{names.group(1)}"}}


def install(app: FastAPI) -> None:
    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            declare_problems(schema)
            declare_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document
