"""The demo `mockcoord serve` shows a newcomer: loaded once per data directory."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml
from sqlmodel import select

from app.models import Build, Namespace, Project
from app.state import AppState
from mockctl.seed.apply import apply_scenario
from mockctl.seed.scenario import Scenario

DEMO_PROJECT = "demo/app"


@dataclass(frozen=True)
class DemoInfo:
    project: str
    build_job_id: int
    test_job_id: int
    test_job_token: str


def read_scenario(text: str) -> Scenario:
    return Scenario.model_validate(yaml.safe_load(text) or {})


async def _find_demo(state: AppState) -> DemoInfo | None:
    namespace, _, path = DEMO_PROJECT.partition("/")
    async with state.db.session() as session:
        project = (
            await session.exec(
                select(Project)
                .join(Namespace, Namespace.id == Project.namespace_id)  # type: ignore[arg-type]
                .where(Namespace.path == namespace, Project.path == path)
            )
        ).first()
        if project is None:
            return None
        jobs = (await session.exec(select(Build).where(Build.project_id == project.id).order_by(Build.id))).all()
    build = next((j for j in reversed(jobs) if j.name == "build"), None)
    test = next((j for j in reversed(jobs) if j.name == "test"), None)
    if build is None or test is None or not test.token:
        return None
    return DemoInfo(DEMO_PROJECT, build.id, test.id, test.token)  # type: ignore[arg-type]


async def prepare_demo(state: AppState) -> DemoInfo | None:
    """Seed the demo unless this data directory already has it."""
    found = await _find_demo(state)
    if found is not None:
        return found
    text = resources.files("app").joinpath("scenarios/demo.yaml").read_text()
    await apply_scenario(state, read_scenario(text))
    return await _find_demo(state)
