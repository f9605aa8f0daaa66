"""The organisation directory: city → county → township → village → grid, departments,
users, and the dispatch catalogue (派单目录). ``demo_org.json`` is the demo organisation."""
