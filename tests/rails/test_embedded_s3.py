"""The embedded object store refuses what S3 refuses: anonymous, forged and expired requests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from app.config import ObjectStoreConnection
from mockctl.embedded_s3 import EmbeddedS3

BUCKET = "gated"
KEY = "a dir/artifacts+1.zip"


def s3_client(endpoint: str, secret: str | None = None) -> Any:
    conn = ObjectStoreConnection()
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=conn.aws_access_key_id,
        aws_secret_access_key=secret or conn.aws_secret_access_key,
        region_name=conn.region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="module")
def client(s3_server: EmbeddedS3) -> Iterator[Any]:
    c = s3_client(s3_server.endpoint)
    c.create_bucket(Bucket=BUCKET)
    c.put_object(Bucket=BUCKET, Key=KEY, Body=b"zip bytes")
    yield c


def error(res: httpx.Response) -> dict[str, str]:
    assert res.headers["content-type"] == "application/xml"
    return {child.tag: child.text or "" for child in ET.fromstring(res.content)}


def signed_at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """botocore signs as if its clock read ``moment``."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment.replace(tzinfo=None))


def test_signed_requests_and_presigned_urls_work(client: Any) -> None:
    assert client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"zip bytes"
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=60)
    res = httpx.get(url)
    assert (res.status_code, res.content) == (200, b"zip bytes")
    ranged = httpx.get(url, headers={"Range": "bytes=0-2"})
    assert (ranged.status_code, ranged.content) == (206, b"zip")
    put = client.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "up.bin"}, ExpiresIn=60)
    assert httpx.put(put, content=b"uploaded").status_code == 200
    assert client.get_object(Bucket=BUCKET, Key="up.bin")["Body"].read() == b"uploaded"


@pytest.mark.parametrize("target", [f"/{BUCKET}", f"/{BUCKET}/a%20dir/artifacts%2B1.zip", "/", "/moto-api/data.json"])
def test_anonymous_requests_are_denied(s3_server: EmbeddedS3, client: Any, target: str) -> None:
    res = httpx.get(s3_server.endpoint + target)
    assert res.status_code == 403
    assert error(res) == {"Code": "AccessDenied", "Message": "Access Denied"}
    assert b"zip bytes" not in res.content and KEY.encode() not in res.content
    head = httpx.head(s3_server.endpoint + target)
    assert (head.status_code, head.content) == (403, b"")  # S3 answers HEAD with the status alone


def test_anonymous_moto_api_cannot_switch_checks_off(s3_server: EmbeddedS3, client: Any) -> None:
    assert httpx.post(s3_server.endpoint + "/moto-api/reset-auth", content=b"1000").status_code == 403
    assert httpx.post(s3_server.endpoint + "/moto-api/reset").status_code == 403
    assert client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"zip bytes"


def test_expired_presigned_url(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    signed_at(monkeypatch, datetime.now(UTC) - timedelta(hours=1))
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=600)
    res = httpx.get(url)
    assert res.status_code == 403
    body = error(res)
    assert (body["Code"], body["Message"], body["X-Amz-Expires"]) == ("AccessDenied", "Request has expired", "600")
    assert body["Expires"] < body["ServerTime"]


@pytest.mark.parametrize("tamper", ["signature", "key", "method"])
def test_forged_presigned_url(s3_server: EmbeddedS3, client: Any, tamper: str) -> None:
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=600)
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    if tamper == "signature":
        res = httpx.get(url.replace(signature, signature[::-1]))
    elif tamper == "key":
        res = httpx.get(url.replace("artifacts%2B1.zip", "artifacts%2B2.zip"))
    else:
        res = httpx.delete(url)
    assert res.status_code == 403
    body = error(res)
    assert body["Code"] == "SignatureDoesNotMatch"
    assert body["Message"].startswith("The request signature we calculated does not match the signature you provided.")


def test_wrong_secret_and_unknown_key(s3_server: EmbeddedS3, client: Any) -> None:
    with pytest.raises(ClientError) as wrong:
        s3_client(s3_server.endpoint, secret="not-the-secret").get_object(Bucket=BUCKET, Key=KEY)
    assert wrong.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unknown = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id="someone-else",
        aws_secret_access_key="x",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as denied:
        unknown.list_objects_v2(Bucket=BUCKET)
    assert denied.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_request_time_too_skewed(s3_server: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    signed_at(monkeypatch, datetime.now(UTC) - timedelta(minutes=20))
    with pytest.raises(ClientError) as skewed:
        s3_client(s3_server.endpoint).list_objects_v2(Bucket=BUCKET)
    assert skewed.value.response["Error"]["Code"] == "RequestTimeTooSkewed"


def test_presigned_url_lifetime_limit(client: Any) -> None:
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=604801)
    res = httpx.get(url)
    assert res.status_code == 400
    assert error(res)["Code"] == "AuthorizationQueryParametersError"
