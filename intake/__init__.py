"""Intake: every channel in; each appeal received, accepted, classified, located, de-duplicated."""
