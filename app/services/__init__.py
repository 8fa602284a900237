"""Use cases. Services flush; the boundary (a request handler, a CLI command, a job) commits."""
