"""``python -m services.dev.issuer``: listens on ISSUER_HOST:ISSUER_PORT (127.0.0.1:8007).

Refuses any address but loopback unless ISSUER_ALLOW_REMOTE=true: it signs tokens for anyone.
"""

import sys

from services.dev.issuer.app import create_app
from services.dev.issuer.settings import load_issuer_settings
from shared.ports import exit_unless_port_free
from shared.server import Server, server_config


def main() -> None:
    try:
        settings = load_issuer_settings()
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    exit_unless_port_free("issuer", settings.host, settings.port, "ISSUER_PORT")
    app = create_app(settings)
    print(f"issuer: {settings.issuer_url} signs tokens for the demo users; kid {app.state.keys.current.kid}", flush=True)
    Server(server_config(app, settings)).run()


main()
