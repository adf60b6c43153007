"""mockcoord's Rails layer: the coordinator API, its data model and its housekeeping."""
