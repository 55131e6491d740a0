"""Benchmarks (``python -m bench``): measured figures, never part of the tests' pass/fail."""
