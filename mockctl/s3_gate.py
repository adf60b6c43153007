"""S3's request authentication in front of the embedded moto server.

moto's S3 server answers every request, signed or not, and its IAM mode cannot check a
presigned URL (a 500). This WSGI front does what S3 does before a request reaches the
bucket: Signature Version 4 in the ``Authorization`` header or in the query string (a
presigned URL), recomputed with botocore's own signer from the key pair the store was
given, and a presigned URL's lifetime checked in real time. Everything else gets S3's 403.
The payload hash is taken as the client declares it (verifying it would mean buffering).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.datastructures import EnvironHeaders

from app.lib.tokens import secure_compare
from mockctl.s3_errors import SIGNATURE_DOES_NOT_MATCH, error_document

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_EXPIRES = 604800  # a week: S3's limit for a presigned URL
MAX_SKEW = timedelta(minutes=15)
QUERY_PARAMETERS = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass(frozen=True)
class Signed:
    """What a request claims: who signed it, when, over which headers, and the signature."""

    access_key: str
    region: str
    timestamp: str
    signed_headers: list[str]
    signature: str
    presigned: bool


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: str, error: S3Error) -> datetime:
    try:
        return datetime.strptime(value, TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise error from None


def _claim(credential: str, timestamp: str, signed_headers: str, signature: str, presigned: bool) -> Signed:
    """``<key>/<yyyymmdd>/<region>/s3/aws4_request``, its date the request's own."""
    parts = credential.split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request" or parts[1] != timestamp[:8]:
        if presigned:
            raise S3Error(
                400, "AuthorizationQueryParametersError", f"Error parsing the X-Amz-Credential parameter: {credential}"
            )
        raise S3Error(400, "AuthorizationHeaderMalformed", f"The authorization header is malformed; {credential}")
    return Signed(parts[0], parts[2], timestamp, signed_headers.split(";"), signature, presigned)


def _from_header(authorization: str, headers: EnvironHeaders) -> Signed:
    scheme, _, rest = authorization.partition(" ")
    if scheme != ALGORITHM:
        raise S3Error(
            400,
            "InvalidRequest",
            f"The authorization mechanism you have provided is not supported. Please use {ALGORITHM}.",
        )
    fields = {name.strip(): value for name, _, value in (part.partition("=") for part in rest.split(","))}
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; missing fields")
    timestamp = headers.get("X-Amz-Date", "")
    sent = _time(
        timestamp, S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    )
    now = datetime.now(UTC)
    if abs(now - sent) > MAX_SKEW:
        raise S3Error(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            RequestTime=timestamp,
            ServerTime=_iso(now),
            MaxAllowedSkewMilliseconds=str(int(MAX_SKEW.total_seconds() * 1000)),
        )
    return _claim(fields["Credential"], timestamp, fields["SignedHeaders"], fields["Signature"], presigned=False)


def _from_query(params: Mapping[str, str]) -> Signed:
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(400, "AuthorizationQueryParametersError", f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    if not all(params.get(name) for name in QUERY_PARAMETERS):
        raise S3Error(
            400,
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        )
    expires = params["X-Amz-Expires"]
    if not expires.isdigit() or int(expires) > MAX_EXPIRES:
        raise S3Error(
            400,
            "AuthorizationQueryParametersError",
            f"X-Amz-Expires must be less than a week (in seconds) that is; {MAX_EXPIRES}",
        )
    timestamp = params["X-Amz-Date"]
    malformed = S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 Long Format")
    until = _time(timestamp, malformed) + timedelta(seconds=int(expires))
    now = datetime.now(UTC)
    if now > until:
        raise S3Error(
            403,
            "AccessDenied",
            "Request has expired",
            **{"X-Amz-Expires": expires, "Expires": _iso(until), "ServerTime": _iso(now)},
        )
    return _claim(
        params["X-Amz-Credential"], timestamp, params["X-Amz-SignedHeaders"], params["X-Amz-Signature"], presigned=True
    )


class S3Gate:
    """WSGI middleware: only requests signed with a known key pair reach ``app``."""

    def __init__(self, app: WSGIApp, credentials: Mapping[str, str]) -> None:
        self.app = app
        self.credentials = dict(credentials)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            self.check(environ)
        except S3Error as exc:
            body = b"" if environ["REQUEST_METHOD"] == "HEAD" else error_document(exc.code, exc.message, exc.details)
            reason = HTTPStatus(exc.status).phrase
            start_response(
                f"{exc.status} {reason}", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return self.app(environ, start_response)

    def check(self, environ: dict[str, Any]) -> None:
        """Raises S3's error for an anonymous, malformed, expired or forged request."""
        headers = EnvironHeaders(environ)
        path, _, query = environ.get("RAW_URI", environ["PATH_INFO"]).partition("?")
        # Canonical as S3 makes it: decoded, then encoded the SigV4 way, whatever
        # percent-encoding the client's HTTP library chose (aiohttp's differs from botocore's).
        params = [(unquote(k), unquote(v)) for k, _, v in (pair.partition("=") for pair in query.split("&") if pair)]
        if authorization := headers.get("Authorization"):
            signed = _from_header(authorization, headers)
        elif any(k in ("X-Amz-Signature", "X-Amz-Algorithm") for k, _ in params):
            signed = _from_query(dict(params))
        else:
            raise S3Error(403, "AccessDenied", "Access Denied")
        secret = self.credentials.get(signed.access_key)
        if secret is None:
            raise S3Error(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                AWSAccessKeyId=signed.access_key,
            )
        request = AWSRequest(
            method=environ["REQUEST_METHOD"],
            url=f"http://{headers.get('Host', '')}{quote(unquote(path), safe='/~')}",
            headers={name: headers.get(name, "") for name in signed.signed_headers},
            params=[(k, v) for k, v in params if k != "X-Amz-Signature"],
        )
        request.context["timestamp"] = signed.timestamp
        signer_class = S3SigV4QueryAuth if signed.presigned else S3SigV4Auth
        signer = signer_class(Credentials(signed.access_key, secret), "s3", signed.region)
        canonical_request = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical_request)
        if not secure_compare(signed.signature, signer.signature(string_to_sign, request)):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                SIGNATURE_DOES_NOT_MATCH,
                AWSAccessKeyId=signed.access_key,
                StringToSign=string_to_sign,
                SignatureProvided=signed.signature,
                CanonicalRequest=canonical_request,
            )
