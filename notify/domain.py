"""Notify's rules, free of I/O (pure functions, tested without a database).

The service is a skeleton so far: it follows every case's status from the topic. Its
rules land with issue #8.
"""
