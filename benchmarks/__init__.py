"""Repeatable performance measurements of the clean room (``python -m benchmarks``)."""
