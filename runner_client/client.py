"""``ArtifactsClient``: the runner's connection to one coordinator, and the Python API.

async with ArtifactsClient("http://127.0.0.1:3000") as c:
    await c.upload(42, token, ["out/"], artifact_type="archive", expire_in="1 week")
    await c.download(41, token, target_dir="deps")
"""

from __future__ import annotations

import os

from runner_client.connection import Connection
from runner_client.download import DownloadState, download_artifacts
from runner_client.upload import UploadState, upload_artifacts


class ArtifactsClient(Connection):
    """Uploads and downloads job artifacts as gitlab-runner ``runner_version`` (``17`` or ``19``) does.

    ``sleep`` and ``rng`` drive every wait (helper backoff, transport backoff and jitter,
    download retry time), so tests can check the schedule without waiting for it.
    ``download_flow`` (``direct`` / ``classic``) overrides the version's download behaviour;
    ``parallel_transfer`` is ``FF_USE_PARALLEL_ARTIFACT_TRANSFER``.
    """

    async def upload(
        self,
        job_id: int,
        token: str,
        paths: list[str],
        *,
        exclude: list[str] | None = None,
        untracked: bool = False,
        workdir: str | os.PathLike[str] = ".",
        name: str | None = "artifacts",
        expire_in: str | None = None,
        artifact_format: str | None = None,
        artifact_type: str | None = None,
        compression_level: str | None = None,
    ) -> UploadState | None:
        """``artifacts-uploader``. None: nothing matched, nothing sent. Raises ``ArtifactsError`` on FATAL."""
        return await upload_artifacts(
            self,
            job_id,
            token,
            paths,
            exclude=exclude,
            untracked=untracked,
            workdir=str(workdir),
            name=name,
            expire_in=expire_in,
            artifact_format=artifact_format,
            artifact_type=artifact_type,
            compression_level=compression_level,
        )

    async def download(
        self,
        job_id: int,
        token: str,
        *,
        target_dir: str | os.PathLike[str] = ".",
        direct_download: bool = True,
        retry: int = 2,
        retry_time: float = 1.0,
        staging_dir: str | None = None,
    ) -> DownloadState:
        """``artifacts-downloader``: download and extract into ``target_dir``. Raises ``ArtifactsError`` on FATAL."""
        return await download_artifacts(
            self,
            job_id,
            token,
            target_dir=target_dir,
            direct_download=direct_download,
            retry=retry,
            retry_time=retry_time,
            staging_dir=staging_dir,
        )
