"""The embedded S3 (moto behind ``S3Gate``) in a process of its own, so a load run samples the
object store apart from Rails: ``python -m mockctl.loadtest.object_store PORT``.

moto keeps what each GET and PUT read until Python's cyclic collector runs
(../shared/reference/performance.md); collecting every few seconds keeps its RSS about the
objects it holds rather than about past transfers, as a real store's would be."""

from __future__ import annotations

import gc
import signal
import sys
import time

from mockctl.embedded_s3 import EmbeddedS3

COLLECT_EVERY = 5.0


def main(port: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    EmbeddedS3(port=port).start()
    print("ready", flush=True)
    while True:
        time.sleep(COLLECT_EVERY)
        gc.collect()


if __name__ == "__main__":
    main(int(sys.argv[1]))
