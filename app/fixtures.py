"""The rows every instance has: application settings, the default plan's limits, and
the ``root`` administrator whose personal access token is the mock's admin token."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.auth_finders import token_digest
from app.models import ApplicationSetting, Namespace, PersonalAccessToken, PlanLimits, User

ROOT_USERNAME = "root"


async def bootstrap(session: AsyncSession, admin_token: str) -> None:
    if (await session.exec(select(ApplicationSetting.id))).first() is None:
        session.add(ApplicationSetting())
    if (await session.exec(select(PlanLimits.id))).first() is None:  # type: ignore[attr-defined]
        session.add(PlanLimits())
    root = (await session.exec(select(User).where(User.username == ROOT_USERNAME))).first()
    if root is None:
        root = User(username=ROOT_USERNAME, name="Administrator", email="admin@example.com", admin=True)
        session.add(root)
        await session.flush()
        session.add(Namespace(name=ROOT_USERNAME, path=ROOT_USERNAME, type="User", owner_id=root.id))
    digest = token_digest(admin_token)
    existing = await session.exec(select(PersonalAccessToken).where(PersonalAccessToken.token_digest == digest))
    if existing.first() is None:
        session.add(
            PersonalAccessToken(
                user_id=root.id,
                name="mockcoord admin",
                token_digest=digest,  # type: ignore[arg-type]
                scopes=["api", "admin_mode"],
            )
        )
    await session.commit()
