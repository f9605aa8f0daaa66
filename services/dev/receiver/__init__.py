"""A development message receiver: stands in for the SMS gateway, the WeChat backend and the
12345 status webhook, so that ``make run`` and the tests see real HTTP deliveries.

It accepts a POST on any path, keeps it in memory and shows it at ``GET /messages``; it can be
told to fail the next N requests (``POST /fail?count=N&path=/hotline``). No database.
"""
