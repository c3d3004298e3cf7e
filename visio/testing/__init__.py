"""Helpers for tests and benchmarks: a private network namespace and a server process."""
