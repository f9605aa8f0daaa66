"""``make bench`` = ``python -m bench``; ``--quick`` for a smoke run, ``--only NAME`` for one phase."""

from bench.runner import main

raise SystemExit(main())
