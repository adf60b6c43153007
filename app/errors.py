"""GitLab's API errors in one place: status, ``{"message": ...}`` body and extra headers.

Grape's own parameter errors use ``{"error": ...}``; ``ParamError`` keeps that shape.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: object,
        headers: dict[str, str] | None = None,
        key: str = "message",
        body: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.key = key
        self.body = body  # a whole body of another shape (OAuth errors), instead of {key: message}

    def response(self) -> JSONResponse:
        body = self.body if self.body is not None else {self.key: self.message}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def forbidden(reason: str | None = None, headers: dict[str, str] | None = None) -> APIError:
    return APIError(403, "403 Forbidden" + (f" - {reason}" if reason else ""), headers)


def unauthorized() -> APIError:
    return APIError(401, "401 Unauthorized")


def not_found(resource: str | None = None) -> APIError:
    return APIError(404, f"404 {resource} Not Found" if resource else "404 Not Found")


def bad_request(message: str) -> APIError:
    return APIError(400, message)


def param_error(message: str) -> APIError:
    """Grape's validation failure, e.g. ``{"error": "artifact_type does not have a valid value"}``."""
    return APIError(400, message, key="error")


def unprocessable(message: str) -> APIError:
    return APIError(422, message)


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return exc.response()


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    field = str(first.get("loc", ["", "parameter"])[-1])
    missing = first.get("type") == "missing"
    text = f"{field} is missing" if missing else f"{field} is invalid"
    if request.url.path.startswith("/-/mock"):
        return JSONResponse({"message": text}, status_code=422)
    return JSONResponse({"error": text}, status_code=400)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return JSONResponse({"error": "404 Not Found"}, status_code=404)
    if exc.status_code == 405:
        return JSONResponse({"message": "405 Method Not Allowed"}, status_code=405)
    return JSONResponse({"message": f"{exc.status_code} {exc.detail}"}, status_code=exc.status_code)
