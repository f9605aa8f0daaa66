"""Dispatch: 乡呼县应 — dispatch orders (交办单), sign and return, whistle calls, work plans, verification and redo."""
