"""The baseline for the download-decision benchmark: presign one object, answer 302.

Same library (aioboto3, one long-lived client) and the same presign call mockcoord
makes, with no database, no authentication and no existence check.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aioboto3
from botocore.config import Config
from fastapi import FastAPI
from fastapi.responses import Response

clients: dict[str, object] = {}


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        session = aioboto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
        clients["s3"] = await stack.enter_async_context(
            session.client(
                "s3",
                endpoint_url=os.environ["BENCH_S3"],
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
        )
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/artifact")
async def artifact() -> Response:
    url = await clients["s3"].generate_presigned_url(  # type: ignore[attr-defined]
        ClientMethod="get_object",
        Params={"Bucket": os.environ["BENCH_BUCKET"], "Key": os.environ["BENCH_KEY"]},
        ExpiresIn=600,
    )
    return Response(status_code=302, headers={"Location": url})
