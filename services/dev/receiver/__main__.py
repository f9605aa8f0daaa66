"""``python -m services.dev.receiver``: listens on RECEIVER_HOST:RECEIVER_PORT (127.0.0.1:8090).

It shows everything notify sent (citizens' messages) to anyone who asks, so in headers mode
(AUTH_MODE=headers, development) it refuses any address but loopback, as the services do."""

import os
import sys
from types import SimpleNamespace


from services.dev.receiver.app import create_app
from shared.auth import SignInMode, headers_mode_problem
from shared.ports import exit_unless_port_free
from shared.server import Server, server_config


def main() -> None:
    host = os.environ.get("RECEIVER_HOST", "127.0.0.1")
    raw = os.environ.get("RECEIVER_PORT", "8090")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        print(f"receiver: RECEIVER_PORT must be a port number, got {raw!r}", file=sys.stderr)
        raise SystemExit(2)
    port = int(raw)
    refusal = headers_mode_problem(SignInMode(), host)
    if refusal:
        print(f"receiver: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    exit_unless_port_free("receiver", host, port, "RECEIVER_PORT")
    Server(server_config(create_app(), SimpleNamespace(host=host, port=port))).run()


main()
