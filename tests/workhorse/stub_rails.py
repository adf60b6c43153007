"""A minimal Rails for Workhorse component tests: the contract Workhorse relies on, nothing more.

It checks every JWT Workhorse signs and records what reached it, so tests can assert that a
request did (or did not) get through.
"""

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

WORKHORSE_JSON = "application/vnd.gitlab-workhorse+json"
JOB_TOKEN = "job-token-ok"


@dataclass
class Call:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # what Rails read at <field>.path
    problems: list[str] = field(default_factory=list)
    peer: str = ""  # the connection it came on (Workhorse's address and port)


@dataclass
class StubRails:
    """Knobs a test turns: where uploads go, what Rails answers, what downloads point at."""

    key: bytes
    s3: Any = None  # boto3 client for presigning
    bucket: str = "artifacts"
    mode: str = "local"  # local | s3 | presigned
    region: str = "us-east-1"
    s3_endpoint: str = ""
    temp_path: str = ""
    maximum_size: int = 0
    upload_status: int = 201
    remote_key: str = ""
    get_url: str = ""  # a GetURL other than the stored object's
    download: tuple[str, str, dict[str, Any]] | None = None  # ("send-url"|"sendfile", target, extra)
    calls: list[Call] = field(default_factory=list)

    def reset(self) -> None:
        self.mode, self.region, self.maximum_size, self.upload_status = "local", "us-east-1", 0, 201
        self.download, self.calls, self.get_url = None, [], ""

    def paths(self) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.calls]

    # --- checks Rails does on Workhorse's requests -------------------------------------------
    def _verify(self, request: Request, call: Call, signed: bool) -> None:
        """Every request names Workhorse; only those of an intercepted route carry the signed JWT."""
        if request.headers.get("gitlab-workhorse") is None:
            call.problems.append("no Gitlab-Workhorse header")
        if request.headers.get("x-sendfile-type") != "X-Sendfile":
            call.problems.append("no X-Sendfile-Type")
        if not signed:
            return
        try:
            claims = jwt.decode(
                request.headers.get("gitlab-workhorse-api-request", ""),
                self.key,
                algorithms=["HS256"],
                issuer="gitlab-workhorse",
            )
            if time.time() - claims["iat"] > 90:
                call.problems.append("stale iat")
        except (jwt.PyJWTError, KeyError) as exc:
            call.problems.append(f"api jwt: {exc}")

    async def _record(self, request: Request, signed: bool = False) -> Call:
        call = Call(request.method, request.url.path, request.url.query, dict(request.headers))
        call.peer = f"{request.client.host}:{request.client.port}" if request.client else ""
        self._verify(request, call, signed)
        self.calls.append(call)
        return call

    # --- endpoints ---------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        call = await self._record(request, signed=True)
        if call.problems:
            return JSONResponse({"message": "403 Forbidden - " + "; ".join(call.problems)}, 403)
        if request.headers.get("job-token") != JOB_TOKEN:
            return Response(
                b'{"message":"403 Forbidden"}', 403, headers={"Content-Type": "application/json", "X-Stub": "refused"}
            )
        if self.mode == "local":
            body: dict[str, Any] = {"TempPath": self.temp_path, "MaximumSize": self.maximum_size}
        else:
            body = {"RemoteObject": self._remote_object(), "MaximumSize": self.maximum_size}
        return Response(json.dumps(body), 200, media_type=WORKHORSE_JSON)

    def _remote_object(self) -> dict[str, Any]:
        final = f"ab/cd/abcdef/@final/12/34/{time.time_ns()}"
        self.remote_key = f"prefix/{final}"
        params = {"Bucket": self.bucket, "Key": self.remote_key}
        presign = self.s3.generate_presigned_url
        remote: dict[str, Any] = {
            "Timeout": 14400,
            "GetURL": self.get_url or presign("get_object", Params=params, ExpiresIn=900),
            "StoreURL": presign("put_object", Params=params, ExpiresIn=900),
            "DeleteURL": presign("delete_object", Params=params, ExpiresIn=900),
            "SkipDelete": True,
            "CustomPutHeaders": True,
            "PutHeaders": {},
            "ID": final,
        }
        if self.mode == "s3":
            remote |= {
                "UseWorkhorseClient": True,
                "RemoteTempObjectID": self.remote_key,
                "ObjectStorage": {
                    "Provider": "AWS",
                    "S3Config": {
                        "Bucket": self.bucket,
                        "Region": self.region,
                        "Endpoint": self.s3_endpoint,
                        "PathStyle": True,
                    },
                },
            }
        return remote

    async def upload(self, request: Request) -> Response:
        call = await self._record(request, signed=True)
        form = await request.form()
        call.form = {k: str(v) for k, v in form.multi_items()}
        await form.close()
        self._verify_upload(request, call)
        for name in ("file", "metadata"):
            if path := call.form.get(f"{name}.path"):
                # Rails reads (copies) it from the shared disk; test files are small.
                call.files[name] = await asyncio.to_thread(Path(path).read_bytes)
        if call.problems:
            return JSONResponse({"message": "; ".join(call.problems)}, 500)
        if "file.sha256" not in call.form:
            return JSONResponse({"error": "file is missing"}, 400)
        if self.upload_status != 201:
            return JSONResponse({"message": "stub failure"}, self.upload_status)
        return Response(b"201", 201, media_type="application/json")

    def _verify_upload(self, request: Request, call: Call) -> None:
        """Rails' multipart.rb checks: the rewritten-fields JWT and each field's signed copy."""
        token = request.headers.get("gitlab-workhorse-multipart-fields")
        if token is None:
            return
        try:
            rewritten = jwt.decode(token, self.key, algorithms=["HS256"], issuer="gitlab-workhorse")
        except jwt.PyJWTError as exc:
            call.problems.append(f"multipart jwt: {exc}")
            return
        for name, path in rewritten["rewritten_fields"].items():
            signed = jwt.decode(
                call.form[f"{name}.gitlab-workhorse-upload"], self.key, algorithms=["HS256"], issuer="gitlab-workhorse"
            )["upload"]
            plain = {
                k.removeprefix(f"{name}."): v
                for k, v in call.form.items()
                if k.startswith(f"{name}.") and not k.endswith("gitlab-workhorse-upload")
            }
            if signed != plain:
                call.problems.append(f"{name}: signed fields differ from plain ones")
            if signed["path"] != path:
                call.problems.append(f"{name}: rewritten path differs")

    async def download_artifacts(self, request: Request) -> Response:
        call = await self._record(request)
        if call.problems or self.download is None:
            return JSONResponse({"message": "404 Not Found"}, 404)
        kind, target, extra = self.download
        headers = {
            "Content-Disposition": 'attachment; filename="artifacts.zip"',
            "Cache-Control": "private",
            "Content-Type": "application/octet-stream",
        }
        if kind == "sendfile":
            return Response(b"", 200, headers={**headers, "X-Sendfile": target})
        params = {"URL": target, "AllowRedirects": False, **extra}
        encoded = base64.urlsafe_b64encode(json.dumps(params).encode()).decode()
        return Response(b"", 200, headers={**headers, "Gitlab-Workhorse-Send-Data": f"send-url:{encoded}"})

    async def echo(self, request: Request) -> Response:
        call = await self._record(request)
        body = await request.body()
        return JSONResponse(
            {"problems": call.problems, "size": len(body), "headers": call.headers},
            headers={"X-Request-Id": "rails-should-not-win"},
        )

    async def slow_down(self, request: Request) -> Response:
        """An object store under load (S3's 503 SlowDown), for a GetURL pointed here."""
        return Response(b"<Error><Code>SlowDown</Code></Error>", 503, media_type="application/xml")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v4/jobs/{id:int}/artifacts/authorize", self.authorize, methods=["POST"]),
                Route("/api/v4/jobs/{id:int}/artifacts", self.upload, methods=["POST"]),
                Route("/api/v4/jobs/{id:int}/artifacts", self.download_artifacts, methods=["GET", "HEAD"]),
                Route("/echo", self.echo, methods=["GET", "POST", "PUT"]),
                Route("/slow-down", self.slow_down, methods=["GET"]),
            ]
        )
