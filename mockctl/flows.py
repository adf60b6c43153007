"""Mermaid sequence diagrams of one correlation id, drawn from the request journal.

Participants and wording follow the diagrams on GitLab's artifacts troubleshooting
page; every arrow comes from a journal entry or a step Rails noted while serving it.
"""

from __future__ import annotations

from mockctl.journal import STORAGE_STEP, JournalEntry
from mockctl.tokens import masked_query

HEADER = """sequenceDiagram
    autonumber
    participant C as Runner
    participant O as Object Storage
    participant W as Workhorse
    participant R as Rails
    participant P as PostgreSQL"""

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Request Entity Too Large",
    416: "Range Not Satisfiable",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
DATABASE_STEPS = ("Look up", "Find ")


def status_text(status: int) -> str:
    return f"{status} {REASONS.get(status, '')}".strip()


def _target(entry: JournalEntry) -> str:
    """Masked again: Workhorse's entries come from another process, in a header."""
    return entry.path + (f"?{masked_query(entry.query)}" if entry.query else "")


def _auth_note(entry: JournalEntry) -> str | None:
    headers = entry.headers
    if "job-token" in headers:
        return f"JOB-TOKEN: {headers['job-token']}"
    if headers.get("authorization", "").lower().startswith("basic"):
        return "gitlab-ci-token@<CI_JOB_TOKEN> (basic auth)"
    if "private-token" in headers:
        return f"PRIVATE-TOKEN: {headers['private-token']}"
    return None


def short_key(key: str) -> str:
    """Object keys carry two 64-character hashes; a diagram needs only their shape."""
    return "/".join(part[:8] + "…" if len(part) > 12 else part for part in key.split("/"))


def _rails_steps(rails: JournalEntry, lines: list[str]) -> bool:
    """Draw what Rails did; True when it answered Workhorse with a send instruction."""
    sent = False
    for step in rails.steps:
        if step.startswith(STORAGE_STEP):
            method, key, status = step.removeprefix(STORAGE_STEP).rsplit(" ", 2)
            lines += [f"    R->>O: {method} {short_key(key)}", f"    O-->>R: {status_text(int(status))}"]
        elif step.startswith(DATABASE_STEPS):
            lines.append(f"    R->>P: {step}")
        elif step.startswith(("Send ", "SendURL")):
            lines.append(f"    R->>W: {step}")
            sent = True
        else:
            lines.append(f"    R->>R: {step}")
    return sent


def _rails_call(rails: JournalEntry, lines: list[str], *, front: bool) -> None:
    """One request Rails served: Workhorse's authorize, the call it makes to finalize an upload
    after storing the file, or the whole request when nothing stood in front."""
    if front:
        lines.append(f"    W->>+R: {rails.method} {_target(rails)}")
    sent = _rails_steps(rails, lines)
    if sent and rails.status < 400 and front:
        lines.append("    deactivate R")
    else:
        lines.append(f"    R-->>-{'W' if front else 'C'}: {status_text(rails.status)}")


def _storage_line(entry: JournalEntry, source: str) -> list[str]:
    size = f" ({entry.bytes_out or entry.bytes_in} bytes)" if entry.bytes_out or entry.bytes_in else ""
    name = "<presigned URL>" if source == "W" and entry.method == "GET" else short_key(entry.path)
    return [f"    {source}->>O: {entry.method} {name}", f"    O-->>{source}: {status_text(entry.status)}{size}"]


def render(entries: list[JournalEntry], client_steps: list[str] | None = None) -> str:
    """The diagram for the entries of one correlation id (any order); ``client_steps`` are
    lines the caller saw itself after the answer (a redirect followed to object storage)."""
    ordered = sorted(entries, key=lambda e: (e.started_at, e.id))
    front = next((e for e in ordered if e.component == "workhorse"), None)
    first = front or next((e for e in ordered if e.component == "rails"), None)
    if first is None:
        return HEADER + "\n"
    lines = [HEADER]
    entry_point = "W" if front else "R"
    lines.append(f"    C->>+{entry_point}: {first.method} {_target(first)}")
    if note := _auth_note(first):
        lines.append(f"    Note over C,{entry_point}: {note}")
    for entry in ordered:
        if entry.component == "rails":
            _rails_call(entry, lines, front=front is not None)
            if front is None:
                break
        elif front and entry.component == "storage" and entry.via == "workhorse":
            lines += _storage_line(entry, "W")
    if front:
        size = f" ({front.bytes_out} bytes)" if front.bytes_out and front.status < 300 else ""
        lines.append(f"    W-->>-C: {status_text(front.status)}{size}")
    lines += [f"    {step}" for step in client_steps or []]
    return "\n".join(lines) + "\n"
