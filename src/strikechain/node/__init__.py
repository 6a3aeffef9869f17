"""The live node: the runtime with wall clock, disk, API, auth and metrics edges."""
