"""``python -m app`` is ``mockcoord``."""

from app.cli import main

main()
