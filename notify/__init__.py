"""Notify: callbacks (回访), ratings, messages to citizens and units, status back to the 12345 hotline."""
