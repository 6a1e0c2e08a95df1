"""Benchmarks: how fast a freed slot reaches a waiting task across flows."""
