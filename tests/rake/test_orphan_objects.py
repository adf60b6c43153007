"""``gitlab:cleanup:list_orphan_job_artifact_final_objects`` and
``delete_orphan_job_artifact_final_objects`` on a real bucket and database: GitLab's lines, rows,
markers and cursors; the rows GitLab deletes blindly, warned of; malformed rows; the re-check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlmodel import select

from app.lib.shared_state import SharedState
from app.models import SharedStateKey
from app.storage.paths import final_path, hashed_dir
from app.storage.s3 import S3Store
from tests.conftest import Coordinator
from tests.rake.helpers import (
    REDIS_URL,
    add_artifact_row,
    add_pending_upload,
    rake,
    redis_or_skip,
    require_s3,
    seed_artifacts,
)

LIST = "gitlab:cleanup:list_orphan_job_artifact_final_objects"
DELETE = "gitlab:cleanup:delete_orphan_job_artifact_final_objects"
MARKER = "orphan-job-artifact-objects-cleanup-last-page-marker"
LIST_DONE = "INFO To delete these objects run gitlab:cleanup:delete_orphan_job_artifact_final_objects"


async def keys(c: Coordinator) -> list[str]:
    return [o.key async for page in c.state.raw_store.list() for o in page]


async def put(c: Coordinator, key: str, data: bytes) -> str:
    await c.state.raw_store.put_bytes(key, data)
    return key


async def shared_state_rows(c: Coordinator) -> list[SharedStateKey]:
    async with c.state.db.session() as session:
        return list((await session.exec(select(SharedStateKey))).all())


@pytest.fixture
async def bucket(coordinator: Coordinator) -> Coordinator:
    require_s3(coordinator)
    return coordinator


async def test_list_names_final_objects_no_row_or_upload_holds(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    live = await seed_artifacts(c, 2)
    project = hashed_dir(1)
    sizes = {await put(c, final_path(1), b"x" * n): n for n in (3, 5, 7)}
    orphans = sorted(sizes)
    await put(c, f"{project}/2024_01_01/9/99/artifacts.zip", b"legacy")  # outside @final: never listed
    pending = await put(c, final_path(1), b"uploading")
    await add_pending_upload(c, pending)
    listing = tmp_path / "orphans.csv"

    ran = await rake(capsys, c.settings, LIST, env={"FILENAME": str(listing)})

    assert ran.code == 0 and ran.err == ""
    assert ran.lines == [
        "INFO Looking for orphan job artifact objects under the `@final` directories",
        "INFO Loading page (first page)",
        *[f"INFO Found orphan object {k} ({sizes[k]} bytes)" for k in orphans],
        f"INFO Loading page (marker: {max(await keys(c))})",
        f"INFO Done. All orphan objects are listed in {listing}.",
        LIST_DONE,
    ]
    assert listing.read_text() == "".join(f"{k},{sizes[k]}\n" for k in orphans)
    assert {a["key"] for a in live} & set(listing.read_text().split()) == set()
    assert await shared_state_rows(c) == []  # the marker goes at the end

    # An existing file is appended to; FORCE_RESTART truncates it.
    assert (await rake(capsys, c.settings, LIST, env={"FILENAME": str(listing)})).code == 0
    assert len(listing.read_text().splitlines()) == 6
    forced = await rake(capsys, c.settings, LIST, env={"FILENAME": str(listing), "FORCE_RESTART": "1"})
    assert forced.lines[1] == "INFO Force restarted. Will not resume from last known page marker."
    assert listing.read_text() == "".join(f"{k},{sizes[k]}\n" for k in orphans)


async def test_list_pages_200_keys_and_resumes_from_the_saved_marker(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = bucket
    stored = sorted([await put(c, final_path(7), b"o") for _ in range(450)])
    monkeypatch.chdir(tmp_path)  # the default FILENAME is in the working directory

    ran = await rake(capsys, c.settings, LIST)
    pages = [line for line in ran.lines if "Loading page" in line]
    assert pages == [
        "INFO Loading page (first page)",
        f"INFO Loading page (marker: {stored[199]})",
        f"INFO Loading page (marker: {stored[399]})",
        f"INFO Loading page (marker: {stored[449]})",  # the empty page that ends an S3 listing
    ]
    default = tmp_path / "orphan_job_artifact_final_objects.csv"
    assert default.read_text() == "".join(f"{k},1\n" for k in stored)
    assert ran.lines[-2] == "INFO Done. All orphan objects are listed in orphan_job_artifact_final_objects.csv."

    # A marker left by an interrupted run: listing resumes after it, appending.
    await SharedState(c.state.db, None).set(MARKER, stored[199], ex=604_800)
    resumed = await rake(capsys, c.settings, LIST)
    assert resumed.lines[1:3] == [
        f"INFO Resuming from last page marker: {stored[199]}",
        f"INFO Loading page (marker: {stored[199]})",
    ]
    assert default.read_text().splitlines()[450:] == [f"{k},1" for k in stored[200:]]
    assert await shared_state_rows(c) == []


@pytest.mark.parametrize("provider", ["aws", "AWS", "google", "azurerm"])
async def test_every_gitlab_provider_is_taken(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    ran = await rake(capsys, bucket.settings, f"{LIST}[{provider}]", env={"FILENAME": str(tmp_path / "o.csv")})
    assert ran.code == 0 and ran.lines[-1] == LIST_DONE


async def test_an_unknown_provider_aborts_with_gitlabs_message(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = await rake(capsys, bucket.settings, f"{LIST}[minio]", env={"FILENAME": str(tmp_path / "o.csv")})
    assert ran.code == 1 and ran.out == ""
    assert ran.err == (
        "The provided provider is unsupported. Please select from google, aws, azurerm.\n"
        'Usage: rake "gitlab:cleanup:list_orphan_job_artifact_final_objects[provider]"\n'
    )
    assert not (tmp_path / "o.csv").exists()


async def test_delete_removes_the_listed_objects_and_lists_them_beside_the_input(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    live = await seed_artifacts(c, 1)
    sizes = {await put(c, final_path(1), b"x" * n): n for n in (2, 4)}
    orphans = sorted(sizes)
    listing = tmp_path / "orphans.csv"
    await rake(capsys, c.settings, LIST, env={"FILENAME": str(listing)})

    ran = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(listing)})

    deleted = tmp_path / "deleted_from--orphans.csv"
    assert ran.code == 0 and ran.err == ""
    assert ran.lines == [
        f"INFO Processing {listing}...",
        "INFO No last cursor position found, starting from beginning.",
        *[f"INFO Deleted object {k} ({sizes[k]} bytes)" for k in orphans],
        f"INFO Saved current cursor position: {listing.stat().st_size}",
        f"INFO Done. All deleted objects are listed in {deleted}.",
    ]
    assert deleted.read_text() == "".join(f"{k},{sizes[k]}\n" for k in orphans)
    assert await keys(c) == [live[0]["key"]]
    assert await shared_state_rows(c) == []

    # Again: the objects are gone already; S3 answers as if deleted, so GitLab lists them again.
    again = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(listing)})
    assert again.code == 0 and len(deleted.read_text().splitlines()) == 4
    forced = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(listing), "FORCE_RESTART": "true"})
    assert forced.lines[1] == "INFO Force restarted. Will not resume from last known cursor position."
    assert deleted.read_text() == "".join(f"{k},{sizes[k]}\n" for k in orphans)  # w+: truncated


async def test_delete_reads_1000_lines_a_batch_and_resumes_from_the_byte_cursor(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    listing = tmp_path / "big.csv"
    rows = [f"{final_path(3)},1\n" for _ in range(2500)]
    listing.write_text("".join(rows))
    first, second = len("".join(rows[:1000])), len("".join(rows[:2000]))
    await SharedState(c.state.db, None).set(
        "orphan-job-artifact-objects-cleanup-cursor-tracker--big.csv", str(first), ex=604_800
    )

    ran = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(listing)})

    key = "orphan-job-artifact-objects-cleanup-cursor-tracker--big.csv"
    assert ran.lines[1] == f"INFO Resuming from last cursor position tracked in {key}: {first}"
    assert [line for line in ran.lines if "cursor position:" in line] == [
        f"INFO Saved current cursor position: {second}",
        f"INFO Saved current cursor position: {listing.stat().st_size}",
    ]
    assert len([line for line in ran.lines if "Deleted object" in line]) == 1500
    assert (tmp_path / "deleted_from--big.csv").read_text() == "".join(
        sorted(rows[1000:2000]) + sorted(rows[2000:])
    )  # by key within a batch
    assert await shared_state_rows(c) == []


async def test_delete_trusts_its_csv_as_gitlab_does_and_warns_of_each_risky_row(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    live = (await seed_artifacts(c, 1))[0]
    project = hashed_dir(1)
    # The file of a live artifact under its pre-@final hashed path: its row has another path.
    legacy = await put(c, f"{project}/2024_01_01/{live['job_id']}/{live['id']}/artifacts.zip", b"live!")
    stray = await put(c, f"{project}/2024_01_01/5/424242/artifacts.zip", b"stray")
    uploading = await put(c, final_path(1), b"upload in progress")
    await add_pending_upload(c, uploading)
    orphan = await put(c, final_path(1), b"orphan")
    listing = tmp_path / "handmade.csv"
    listing.write_text(f"{legacy},5\n{stray},5\n{uploading},18\n{orphan},6\n")

    ran = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(listing)})

    assert ran.code == 0
    warnings = [line for line in ran.lines if line.startswith("WARN")]
    assert warnings == [  # in key order: the hashed paths sort before @final
        f"WARN Row 1: {legacy} is not in an @final directory, and it is the file of job artifact {live['id']}, "
        "which still exists; GitLab deletes it anyway (its delete task trusts the CSV)",
        f"WARN Row 2: {stray} is not in an @final directory; GitLab deletes it anyway (its delete task trusts the CSV)",
        f"WARN Row 3: {uploading} is an upload in progress (a pending direct upload); GitLab deletes it anyway "
        "and the upload's finalize then fails",
    ]
    assert ran.lines.index(warnings[-1]) < min(i for i, line in enumerate(ran.lines) if "Deleted object" in line)
    # Rehearsed exactly: all four go, as on GitLab.
    assert sorted(await keys(c)) == [live["key"]]
    deleted = (tmp_path / "deleted_from--handmade.csv").read_text().splitlines()
    assert sorted(deleted) == sorted([f"{legacy},5", f"{stray},5", f"{uploading},18", f"{orphan},6"])


async def test_malformed_rows_are_named_and_the_rest_processed(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    good = sorted([await put(c, final_path(2), b"g") for _ in range(2)])
    kept = await put(c, final_path(2), b"kept")
    listing = tmp_path / "bad.csv"
    listing.write_text(
        f"{good[0]},1\n"
        f"{kept}\n"  # no size
        f"{kept},4,1711616743796587\n"  # a Google row: generation
        f"{kept},four\n"
        "\n"
        ",4\n"
        f"{good[1]},1\r\n"  # CRLF is fine
    )

    ran = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(listing)})

    assert ran.code == 0 and "Traceback" not in ran.err
    name = str(listing)
    assert [line for line in ran.lines if line.startswith("WARN")] == [
        f"WARN Row 2 of {name} is malformed: 1 column, expected 2 (key,size); skipped (GitLab would send a DELETE "
        f"for {kept!r} with the line break as part of the key, which matches no object)",
        f"WARN Row 3 of {name} is malformed: 3 columns, expected 2 (key,size); skipped "
        f"(GitLab would delete {kept}, ignoring the rest)",
        f"WARN Row 4 of {name} is malformed: the size 'four' is not a number; skipped "
        f"(GitLab would delete {kept} and report its size as 0)",
        f"WARN Row 5 of {name} is empty; skipped (GitLab would send a DELETE for the line break as a key)",
        f"WARN Row 6 of {name} is malformed: the key is empty; skipped (GitLab would send a DELETE without a key)",
    ]
    assert await keys(c) == [kept]
    assert (tmp_path / "deleted_from--bad.csv").read_text() == f"{good[0]},1\n{good[1]},1\n"


async def test_an_object_an_artifact_took_since_the_listing_is_never_deleted(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    live = (await seed_artifacts(c, 1))[0]
    racing = await put(c, final_path(1), b"finalized later")
    other = await put(c, final_path(1), b"orphan")
    listing = tmp_path / "orphans.csv"
    await rake(capsys, c.settings, LIST, env={"FILENAME": str(listing)})
    assert racing in listing.read_text() and other in listing.read_text()
    await add_artifact_row(c, live, racing)  # the upload finalizes between listing and deletion

    ran = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(listing)})

    assert f"INFO Found job artifact record for object {racing}, skipping." in ran.lines
    assert sorted(await keys(c)) == sorted([live["key"], racing])
    assert (tmp_path / "deleted_from--orphans.csv").read_text().splitlines() == [f"{other},6"]


async def test_a_missing_list_is_one_line_and_changes_nothing(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    kept = await put(c, final_path(1), b"kept")
    cursor = "orphan-job-artifact-objects-cleanup-cursor-tracker--missing.csv"
    await SharedState(c.state.db, None).set(cursor, "12", ex=604_800)
    missing = tmp_path / "missing.csv"

    ran = await rake(capsys, c.settings, DELETE, env={"FILENAME": str(missing)})

    assert ran.code == 1
    assert ran.lines == [f"INFO Processing {missing}..."]
    assert ran.err == f"No such file or directory @ rb_sysopen - {missing}\n"
    assert os.listdir(tmp_path) == [] and await keys(c) == [kept]
    assert await SharedState(c.state.db, None).get(cursor) == "12"


async def test_with_a_bucket_prefix_rows_keep_it_and_a_key_outside_it_is_warned_of(
    bucket: Coordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = bucket
    live = (await seed_artifacts(c, 1))[0]  # its file_final_path has no prefix
    settings = c.settings.model_copy(deep=True)
    settings.object_store.objects.artifacts.bucket = f"{c.settings.object_store.artifacts_bucket}/pre/fix"
    prefixed = await S3Store(settings.object_store).open()
    try:
        await prefixed.put_bytes(live["key"], b"live")
        orphan = final_path(1)
        await prefixed.put_bytes(orphan, b"orphan")
    finally:
        await prefixed.close()
    outside = await put(c, final_path(1), b"outside")  # no prefix: not this instance's
    listing = tmp_path / "orphans.csv"

    ran = await rake(capsys, settings, LIST, env={"FILENAME": str(listing)})
    assert f"INFO Found orphan object pre/fix/{orphan} (6 bytes)" in ran.lines
    assert listing.read_text() == f"pre/fix/{orphan},6\n"

    listing.write_text(f"pre/fix/{orphan},6\n{outside},7\n")
    deleted = await rake(capsys, settings, DELETE, env={"FILENAME": str(listing)})
    assert [line for line in deleted.lines if line.startswith("WARN")] == [
        f"WARN Row 2: {outside} is outside the bucket prefix pre/fix/; "
        "GitLab deletes it anyway (its delete task trusts the CSV)"
    ]
    assert sorted(await keys(c)) == sorted([live["key"], f"pre/fix/{live['key']}"])


@pytest.mark.parametrize("backend", ["redis", "database"])
async def test_the_marker_lives_in_gitlabs_redis_key_or_a_row(
    bucket: Coordinator, backend: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    c = bucket
    settings = c.settings
    if backend == "redis":
        client = await redis_or_skip()
        await client.delete(MARKER)
        settings = c.settings.model_copy(update={"redis_url": REDIS_URL})
    state = SharedState(c.state.db, settings.redis_url)
    await state.set(MARKER, "zz", ex=604_800)
    if backend == "redis":
        assert await client.get(MARKER) == b"zz" and 604_790 < await client.ttl(MARKER) <= 604_800
        assert await shared_state_rows(c) == []
    else:
        rows = await shared_state_rows(c)
        assert [(r.key, r.value) for r in rows] == [(MARKER, "zz")]
        assert 604_790 < (await state.ttl(MARKER) or 0) <= 604_800
    await put(c, final_path(1), b"after zz? no: before")  # keys start with hex: all before "zz"

    ran = await rake(capsys, settings, LIST, env={"FILENAME": str(tmp_path / "o.csv")})
    assert ran.lines[1:3] == ["INFO Resuming from last page marker: zz", "INFO Loading page (marker: zz)"]
    assert (tmp_path / "o.csv").read_text() == ""
    assert await state.get(MARKER) is None
    if backend == "redis":
        assert await client.exists(MARKER) == 0
        await client.aclose()
