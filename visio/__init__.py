"""Visio: sovereign video conferencing on Janus, driven by a Python server."""

__version__ = "0.1.0"
