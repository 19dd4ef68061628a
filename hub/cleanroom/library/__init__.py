"""The data library: immutable, checksummed, read-only dataset versions."""
