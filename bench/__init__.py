"""Benchmarks (``make bench``): this machine's baselines and the services' figures, from one run.

Every service figure is reported next to baselines measured minutes earlier in the same
run (raw asyncpg transactions, the broker, a bare uvicorn endpoint), because absolute
numbers on a shared 2-core machine drift from run to run; the ratios much less so.
``runner`` holds the registry of phases; ``BENCHMARKS.md`` and ``bench/results.json`` are
the outputs.
"""
