"""Who is asking on the general REST API (``API::APIGuard``, ``Gitlab::Auth::AuthFinders``).

A personal access token (``PRIVATE-TOKEN``, ``private_token``, ``Authorization: Bearer``)
names a user; a CI/CD job token names the user who started that job, and counts only on
routes that allow it (``route_setting :authentication, job_token_allowed: true``). A token
that is present but wrong is a 401 even where anonymous access would be fine.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import clock
from app.auth.auth_finders import Credentials, token_digest
from app.auth.runner_helpers import PROCESSING
from app.errors import APIError, forbidden, unauthorized
from app.models import Build, PersonalAccessToken, User

READ_SCOPES = {"api", "read_api"}
WRITE_SCOPES = {"api"}


@dataclass(frozen=True)
class ApiUser:
    user: User
    job: Build | None = None  # the job whose CI/CD job token authenticated the request


def insufficient_scope(scopes: set[str]) -> APIError:
    """``Gitlab::Auth::InsufficientScopeError``: Rack::OAuth2's Bearer 403 (no WWW-Authenticate,
    as GitLab's own FIXME notes)."""
    description = "The request requires higher privileges than provided by the access token."
    scope = " ".join(sorted(scopes))
    return APIError(
        403, description, body={"error": "insufficient_scope", "error_description": description, "scope": scope}
    )


def invalid_token(description: str) -> APIError:
    """Expired or revoked tokens: Rack::OAuth2's Bearer 401 rather than Grape's message."""
    return APIError(
        401,
        description,
        headers={
            "WWW-Authenticate": f'Bearer realm="The API", error="invalid_token", error_description="{description}"'
        },
        body={"error": "invalid_token", "error_description": description},
    )


async def _from_personal_access_token(session: AsyncSession, token: str, write: bool) -> User:
    pat = (
        await session.exec(select(PersonalAccessToken).where(PersonalAccessToken.token_digest == token_digest(token)))
    ).first()
    if pat is None:
        raise unauthorized()
    if pat.revoked:
        raise invalid_token("Token was revoked. You have to re-authorize from the user.")
    if pat.expires_at is not None and pat.expires_at <= clock.now():
        raise invalid_token("Token is expired. You can either do re-authorization or token refresh.")
    allowed = WRITE_SCOPES if write else READ_SCOPES
    if not set(pat.scopes or []) & allowed:
        raise insufficient_scope(allowed)
    user = await session.get(User, pat.user_id)
    if user is None:
        raise unauthorized()
    return user


async def _from_job_token(session: AsyncSession, token: str) -> tuple[User, Build]:
    """``Ci::AuthJobFinder``: the token of a job still running on a runner, not erased or expired."""
    job = (await session.exec(select(Build).where(Build.token == token))).first()
    if job is None or job.status not in PROCESSING or job.erased_at is not None:
        raise unauthorized()
    if job.token_expires_at is not None and job.token_expires_at <= clock.now():
        raise unauthorized()
    user = await session.get(User, job.user_id) if job.user_id is not None else None
    if user is None:
        raise unauthorized()
    return user, job


async def find_current_user(
    session: AsyncSession, creds: Credentials, *, job_token_allowed: bool, write: bool
) -> ApiUser | None:
    """None for an anonymous request; 401 for a wrong token; 403 for a blocked account."""
    if creds.personal_access_token:
        current = ApiUser(await _from_personal_access_token(session, creds.personal_access_token, write))
    elif creds.job_token and job_token_allowed:
        user, job = await _from_job_token(session, creds.job_token)
        current = ApiUser(user, job)
    else:
        return None
    if current.user.state == "blocked":
        raise forbidden("Your account has been blocked.")
    return current
