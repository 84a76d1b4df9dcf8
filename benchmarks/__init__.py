"""Benchmarks of tinynet: run ``python -m benchmarks --help``."""
