"""Scenarios: the format, applying one atomically, and the demo ``serve`` loads."""
