"""``lib/tasks/gitlab/cleanup.rake``: the artifact cleanup tasks, reading ``ENV`` as GitLab's do
(``FORCE_RESTART`` and ``DEBUG``: any non-blank value; ``DRY_RUN``: true unless exactly
``false``; ``FILENAME``, ``NICENESS``). ``REMOVE_EMPTY_DIRS`` is mockcoord's own."""

from __future__ import annotations

from app.tasks.gitlab.cleanup.orphan_job_artifact_files import OrphanJobArtifactFiles
from app.tasks.gitlab.cleanup.orphan_job_artifact_final_objects.generate_list import (
    GenerateList,
    UnsupportedProviderError,
)
from app.tasks.gitlab.cleanup.orphan_job_artifact_final_objects.process_list import ProcessList
from app.tasks.rake import RakeAbort, RakeEnvironment, RakeError, TaskDefinition

LIST_TASK = "gitlab:cleanup:list_orphan_job_artifact_final_objects"
DELETE_TASK = "gitlab:cleanup:delete_orphan_job_artifact_final_objects"
FILES_TASK = "gitlab:cleanup:orphan_job_artifact_files"


def dry_run(env: RakeEnvironment) -> bool:
    return env.env.get("DRY_RUN") != "false"


async def orphan_job_artifact_files(env: RakeEnvironment, args: list[str]) -> None:
    if env.settings.object_store.enabled:
        raise RakeError(
            "artifacts are on object storage here: this task looks only at local storage "
            f"({env.settings.artifacts_path}); list orphan objects with {LIST_TASK}, "
            "or pass --storage local for a coordinator on local disk"
        )
    cleaner = OrphanJobArtifactFiles(
        env,
        dry_run=dry_run(env),
        niceness=env.env.get("NICENESS", "").strip() or None,
        remove_empty_dirs=env.env.get("REMOVE_EMPTY_DIRS") == "true",
    )
    await cleaner.run()
    if dry_run(env):
        env.logger.info("To clean up these files run this command with DRY_RUN=false", color="yellow")


async def list_orphan_job_artifact_final_objects(env: RakeEnvironment, args: list[str]) -> None:
    try:
        generator = GenerateList(
            env,
            provider=args[0] if args else None,
            filename=env.env.get("FILENAME") or None,
            force_restart=env.present("FORCE_RESTART"),
        )
    except UnsupportedProviderError as exc:
        raise RakeAbort(f'{exc}\nUsage: rake "{LIST_TASK}[provider]"') from None
    await generator.run()
    env.logger.info(f"To delete these objects run {DELETE_TASK}", color="yellow")


async def delete_orphan_job_artifact_final_objects(env: RakeEnvironment, args: list[str]) -> None:
    processor = ProcessList(env, filename=env.env.get("FILENAME") or None, force_restart=env.present("FORCE_RESTART"))
    await processor.run()


TASKS = [
    TaskDefinition(
        FILES_TASK, "GitLab | Cleanup | Clean orphan job artifact files in local storage", (), orphan_job_artifact_files
    ),
    TaskDefinition(
        LIST_TASK,
        "GitLab | Cleanup | Generate a CSV file of orphan job artifact objects stored in the @final directory",
        ("provider",),
        list_orphan_job_artifact_final_objects,
    ),
    TaskDefinition(
        DELETE_TASK,
        "GitLab | Cleanup | Delete orphan job artifact objects stored in the @final directory based on the CSV file",
        (),
        delete_orphan_job_artifact_final_objects,
    ),
]
