"""Notify's queries. No commits here: the unit of work commits."""
