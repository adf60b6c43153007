"""A small file several processes on one machine share, and a cheap way to see it changed.

Writers replace the file whole (a new file renamed over the old, so a reader never sees half of
it, and the file's identity changes); readers compare the identity, one ``stat``, before trusting
what they read last. The cost a request pays is that ``stat``: a few microseconds.
"""

from __future__ import annotations

import os
from pathlib import Path

Identity = tuple[int, int, int] | None


def identity(path: Path) -> Identity:
    """Inode, modification time and size; None when there is no file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def replace(path: Path, text: str) -> Identity:
    """Write ``text`` as the whole file; the new identity."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return identity(path)
