"""Smoke tests of the benchmark code (correctness at tiny sizes, never timing)."""
