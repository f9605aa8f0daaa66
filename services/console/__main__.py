"""``python -m services.console``: listens on CONSOLE_HOST:CONSOLE_PORT (127.0.0.1:8008)."""

import sys


from services.console.app import create_app
from services.console.settings import load_console_settings
from shared.logs import configure_logging
from shared.ports import exit_unless_port_free
from shared.server import Server, server_config


def main() -> None:
    try:
        settings = load_console_settings()
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    exit_unless_port_free("console", settings.host, settings.port, "CONSOLE_PORT")
    configure_logging("console", settings.log_level, json=settings.log_json)
    if settings.session_secret is None:
        print("console: CONSOLE_SESSION_SECRET is not set; sessions end when the console restarts", file=sys.stderr)
    print(f"console: http://{settings.host}:{settings.port}/ (county {settings.county})", flush=True)
    # Open live streams never end on their own: give them a short grace on shutdown, then cut them.
    Server(server_config(create_app(settings), settings, timeout_graceful_shutdown=3)).run()


main()
