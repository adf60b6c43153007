"""The job log's masking (common/buildlogger: ``masker`` and ``tokensanitizer``): values of
masked variables become ``[MASKED]``; a word starting with one of the job's
``token_mask_prefixes`` (and always ``glpat-``) keeps its prefix and loses the rest.

Output is masked a line at a time so a secret split across two reads is still caught; a
partial line is held until its newline or until ``flush`` (end of a stage). A line longer
than ``MAX_PENDING`` is let through in pieces, keeping back enough bytes to finish any phrase
or token that might continue in the next read.
"""

from __future__ import annotations

import re

MASK = b"[MASKED]"
DEFAULT_PREFIXES = ("glpat-",)
MAX_PREFIXES = 15  # tokensanitizer.New ignores prefixes past this many
MAX_PENDING = 16 * 1024  # common.DefaultReaderBufferSize: the longest line held back
_TOKEN_CHARS = rb"[0-9A-Za-z_.=-]"


class Masker:
    def __init__(self, phrases: list[str], prefixes: list[str] | tuple[str, ...] = ()) -> None:
        unique = sorted({p.encode() for p in phrases if p}, key=len, reverse=True)
        wanted = [*DEFAULT_PREFIXES, *(p for p in prefixes if p not in DEFAULT_PREFIXES)][:MAX_PREFIXES]
        self.prefixes = sorted({p.encode() for p in wanted if p}, key=len, reverse=True)
        alternatives = [re.escape(p) for p in unique]
        alternatives += [b"(?P<prefix>" + b"|".join(re.escape(p) for p in self.prefixes) + b")" + _TOKEN_CHARS + b"+"]
        self.pattern = re.compile(b"|".join(alternatives))
        self.longest = max([len(p) for p in unique] + [len(p) for p in self.prefixes] + [1])
        self.pending = b""

    def _mask(self, data: bytes) -> bytes:
        return self.pattern.sub(lambda m: (m.group("prefix") or b"") + MASK, data)

    def feed(self, data: bytes) -> bytes:
        """Masked bytes that are safe to send now."""
        self.pending += data
        cut = self.pending.rfind(b"\n") + 1
        if cut == 0 and len(self.pending) > MAX_PENDING:
            cut = self._safe_cut(self.pending)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return self._mask(out)

    def flush(self) -> bytes:
        out, self.pending = self.pending, b""
        return self._mask(out)

    def _safe_cut(self, data: bytes) -> int:
        """Where a long line may be split: not inside a trailing token, nor where a phrase could start."""
        cut = len(data) - (self.longest - 1)
        for match in self.pattern.finditer(data, max(0, cut - MAX_PENDING)):
            if match.start() < cut < match.end() or (match.group("prefix") and match.end() == len(data)):
                cut = min(cut, match.start())
        return max(cut, 0)
