"""``python -m app`` is ``mockcoord``."""

from mockctl.cli import main

main()
