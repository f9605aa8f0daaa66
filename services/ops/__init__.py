"""``python -m services.ops``: the on-call engineer's command line (shared.ops does the work)."""
