"""What a load run follows, handed from the orchestrator to every Locust process (as JSON in a
Locust option, which Locust's master passes on to its workers)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from runner_client.load.blob import Digest


@dataclass(frozen=True)
class SeededObject:
    """A job whose archive holds ``blob_chunks(seed, size)``."""

    job_id: int
    size: int
    sha256: str

    @property
    def digest(self) -> Digest:
        return Digest(self.size, self.sha256)


@dataclass(frozen=True)
class Plan:
    url: str
    admin_token: str
    reader_token: str = ""  # a running job's token in the objects' project: the downloads' JOB-TOKEN
    objects: list[SeededObject] = field(default_factory=list)
    upload_seed: int = 0
    upload_size: int = 0
    upload_sha256: str = ""
    upload_group: str = ""  # where upload users seed fresh running jobs
    runner_version: str = "19"
    urls: list[str] = field(default_factory=list)  # per object, a plain URL of its bytes (UrlDownloadUser)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        data["objects"] = [SeededObject(**o) for o in data.get("objects", [])]
        return cls(**data)
