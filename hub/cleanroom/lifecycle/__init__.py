"""The data's lifecycle: keys and encryption at rest, backups, retention, closure, teardown."""
