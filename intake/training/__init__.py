"""Training data shipped with intake: the demo counties' labelled appeals (demo/*.jsonl)."""
