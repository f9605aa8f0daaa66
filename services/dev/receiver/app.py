"""The receiver's FastAPI app (see the package docstring)."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

# Headers worth keeping for a test that checks signatures and idempotency keys.
KEPT_HEADERS = ("content-type", "idempotency-key", "x-event-id", "x-client-id", "x-timestamp", "x-nonce", "x-signature",
                "traceparent", "tracestate")


class Store:
    """What was received, and how many coming requests to fail (per path, or '*' for any)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.failures: dict[str, tuple[int, int]] = {}  # path → (count left, status)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def take_failure(self, path: str) -> int | None:
        with self._lock:
            for key in (path, "*"):
                left, status = self.failures.get(key, (0, 0))
                if left > 0:
                    self.failures[key] = (left - 1, status)
                    return status
        return None

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entry = {"id": next(self._ids), **entry}
            self.messages.append(entry)
            return entry


def create_app() -> FastAPI:
    app = FastAPI(title="接诉即办 · development message receiver", version="1.0")
    store = Store()
    app.state.store = store

    @app.get("/health")
    @app.get("/ready")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "receiver"}

    @app.get("/messages", summary="What was received (newest last), filterable")
    async def messages(
        path: str | None = Query(None, description="only this path, e.g. /sms"),
        contains: str | None = Query(None, description="only bodies containing this text"),
        header: str | None = Query(None, description="name=value, e.g. idempotency-key=<event id>"),
        include_failed: bool = Query(False, description="also the requests answered with a failure"),
        after: int = Query(0, ge=0, description="only ids above this"),
    ) -> dict[str, Any]:
        items = [m for m in store.messages if m["id"] > after]
        if not include_failed:
            items = [m for m in items if m["status"] < 400]
        if path:
            items = [m for m in items if m["path"] == path]
        if contains:
            items = [m for m in items if contains in m["body"]]
        if header:
            name, _, value = header.partition("=")
            items = [m for m in items if m["headers"].get(name.lower()) == value]
        return {"count": len(items), "items": items}

    @app.delete("/messages", summary="Forget everything received")
    async def clear() -> dict[str, int]:
        count = len(store.messages)
        store.messages.clear()
        return {"cleared": count}

    @app.post("/fail", summary="Fail the next N requests (on one path, or any)")
    async def fail(count: int = Query(1, ge=0, le=10_000), path: str = Query("*"),
                   status: int = Query(503, ge=400, le=599)) -> dict[str, Any]:  # fmt: skip
        store.failures[path] = (count, status)
        return {"path": path, "count": count, "status": status}

    @app.post("/{path:path}", summary="Receive a message on any path")
    async def receive(path: str, request: Request) -> JSONResponse:
        full = "/" + path
        body = await request.body()
        status = store.take_failure(full) or 200
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        entry = store.add({
            "path": full,
            "target": full + (f"?{request.url.query}" if request.url.query else ""),
            "status": status,
            "received_at": datetime.now(UTC).isoformat(),
            "headers": {k: v for k, v in request.headers.items() if k in KEPT_HEADERS},
            "body": text,
            "json": parsed,
        })  # fmt: skip
        if status >= 400:
            return JSONResponse({"error": "failing on request (POST /fail)", "id": entry["id"]}, status_code=status)
        return JSONResponse({"ok": True, "id": entry["id"]})

    return app
