"""What every service shares: the case-lifecycle event contract and the plumbing under it.

Services import from here and never from each other.
"""
