"""Backups of a running service and their restore: a consistent database snapshot, every artifact
it refers to, the prediction log, and a manifest of checksums (see service.py)."""
