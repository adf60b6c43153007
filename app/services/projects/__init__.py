"""``Projects::`` services and ``ProjectStatistics`` updates."""
