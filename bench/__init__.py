"""Benchmarks (`make bench`): baselines and service figures from one run on this machine."""
