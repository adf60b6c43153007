"""mockcoord's instrument: fault rules and how to carry them out (``faults``, ``asgi``), token
shortening (``tokens``), shared by Rails (``app``) and Workhorse; those modules import neither.
``workhorse`` plugs them and Workhorse's journal (``workhorse_journal``) into Workhorse's one
seam, ``workhorse.instrumentation``: Workhorse itself imports nothing from here."""
