"""Scoring's own tables (its own database). The shared plumbing tables — outbox, inbox,
dead letters, case_status — come from the shared migration branch."""

from sqlalchemy import MetaData

metadata = MetaData()
