"""The command line: argparse over ``shared.ops``.

Service addresses, database URLs, topic and consumer group come from the same environment
variables the services read (``INTAKE_DATABASE_URL`` or ``DATABASE_URL``, ``INTAKE_PORT``,
``KAFKA_BOOTSTRAP_SERVERS``, …), through each service's own settings class. Commands that
change something print what they will do and ask first, unless ``--yes``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ops.registry import SERVICES, ServiceEntry
from shared import ops
from shared.db import create_engine
from shared.ports import replica_count, replica_ports
from shared.settings import SettingsError, load_settings
from shared.service import context_of, handler_of

log = logging.getLogger("ops")


class Fail(Exception):
    """An error for the operator: printed as is, exit code 1."""


# -- wiring -------------------------------------------------------------------------------


def entry(name: str) -> ServiceEntry:
    if name not in SERVICES:
        raise Fail(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    return SERVICES[name]


def settings_of(name: str) -> Any:
    service = entry(name)
    try:
        return load_settings(service.settings_cls())
    except SettingsError as exc:
        raise Fail(f"{name}: {exc.code}") from None


def replica_urls(name: str, settings: Any, overrides: dict[str, str]) -> list[str]:
    """Where each replica of the service answers, replica 0 first: ``<SERVICE>_REPLICAS`` of
    them on the port + 100·k, as the launcher starts them (one ``--url`` names one)."""
    if name in overrides:
        return [overrides[name].rstrip("/")]
    prefix = entry(name).settings_cls().model_config.get("env_prefix", "")
    try:
        replicas = replica_count(prefix, os.environ)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return [f"http://{host}:{port}" for port in replica_ports(settings.port, replicas)]


def replica_label(name: str, replica: int) -> str:
    """``dispatch`` for replica 0, ``dispatch-1`` for the next: the launcher's process names."""
    return name if replica == 0 else f"{name}-{replica}"


def where(settings: Any) -> str:
    url = make_url(settings.async_database_url)
    return f"{url.host}:{url.port or 5432}/{url.database}"


def database_hint(name: str, settings: Any, exc: BaseException) -> str:
    prefix = type(settings).model_config.get("env_prefix", "")
    text = f"{type(exc).__name__}: {exc}"
    if "does not exist" in text:
        fix = f"has {name} started once (it creates its database)? Or point {prefix}DATABASE_URL / DATABASE_URL at it"
    else:
        fix = f"is PostgreSQL up? Set {prefix}DATABASE_URL or DATABASE_URL to reach it"
    return f"{name}: cannot use its database {where(settings)} ({text.splitlines()[0][:160]}); {fix}"


async def with_engine(name: str, settings: Any, work: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    engine = create_engine(settings.async_database_url, pool_size=1)
    try:
        try:
            return await work(engine)
        except ops.OpsError:
            raise
        except (OSError, Exception) as exc:
            if _is_database_error(exc):
                raise Fail(database_hint(name, settings, exc)) from None
            raise
    finally:
        await engine.dispose()


def _is_database_error(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    return isinstance(exc, OSError | DBAPIError | InterfaceError | OperationalError) or type(exc).__module__.startswith("asyncpg")


def confirm(plan: str, args: argparse.Namespace) -> None:
    print(plan)
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise Fail("not confirmed: no terminal to ask on; add --yes to go ahead")
    answer = input("Go ahead? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Fail("cancelled; nothing changed")


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_time(value: str) -> datetime:
    """An ISO-8601 time (UTC when no zone is given) or a span back from now: 30m, 2h, 1d."""
    m = _RELATIVE.match(value)
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: float(m.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Fail(f"{value!r} is not a time: give 2026-05-01T08:00:00+08:00, or a span back from now like 30m, 2h, 1d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return "0s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- status -------------------------------------------------------------------------------


async def _status_rows(name: str, overrides: dict[str, str]) -> list[list[str]]:
    """One row per replica: its health and readiness; the consumer group's lag and the
    database's outbox and dead letters, which the replicas share, on the first row."""
    service = entry(name)
    try:
        settings = settings_of(name)
        urls = replica_urls(name, settings, overrides)
    except Fail as exc:
        return [[name, "-", f"bad settings: {exc}", "-", "-", "-", "-", "-"]]
    http = asyncio.gather(*(ops.http_status(url) for url in urls))

    async def database() -> ops.PlumbingState | str:
        engine = create_engine(settings.async_database_url, pool_size=1)
        try:
            return await asyncio.wait_for(ops.plumbing_state(engine), 5)
        except Exception as exc:
            return f"db: {type(exc).__name__}"
        finally:
            await engine.dispose()

    async def lag() -> list[ops.PartitionLag] | str | None:
        if not service.consumes:
            return None
        try:
            return await asyncio.wait_for(
                ops.measure_group_lag(settings.kafka_bootstrap_servers, settings.kafka_topic, settings.group_id, timeout=4), 8
            )
        except ops.OpsError as exc:
            return "broker down" if "no Kafka broker" in str(exc) else f"broker: {exc}"
        except Exception as exc:
            return f"broker: {type(exc).__name__}"

    statuses, state, parts = await asyncio.gather(http, database(), lag())
    if isinstance(parts, list):
        lag_text = str(sum(p.lag for p in parts))
        lag_age = age(max((p.lag_seconds for p in parts), default=0.0))
    else:
        lag_text, lag_age = (parts or "-"), "-"
    if isinstance(state, ops.PlumbingState):
        backlog, oldest, parked = str(state.outbox_backlog), age(state.outbox_oldest_age_seconds), str(state.dead_letters_parked)
    else:
        backlog, oldest, parked = state, "-", "-"
    shared_columns = [lag_text, lag_age, backlog, oldest, parked]
    return [
        [replica_label(name, k), status.health, status.ready, *(shared_columns if k == 0 else ["″"] * len(shared_columns))]
        for k, status in enumerate(statuses)
    ]


async def cmd_status(args: argparse.Namespace) -> int:
    names = args.services or list(SERVICES)
    for name in names:
        entry(name)
    rows = [row for rows_of in await asyncio.gather(*(_status_rows(name, args.url) for name in names)) for row in rows_of]
    print(ops.render_table(["service", "health", "ready", "lag", "lag age", "outbox", "oldest unsent", "DLQ"], rows))
    troubled = [r[0] for r in rows if r[1] != "ok" or r[2] != "ready" or r[7] not in ("0", "-", "″")]
    if troubled:
        print(f"\nneeds a look: {', '.join(troubled)}")
    return 1 if troubled else 0


# -- dead letters ---------------------------------------------------------------------------


def _short(text: str | None, width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


async def cmd_dlq_list(args: argparse.Namespace) -> int:
    settings = settings_of(args.service)
    status = None if args.status == "all" else args.status
    letters = await with_engine(args.service, settings, lambda e: ops.list_dead_letters(e, status=status, limit=args.limit))
    if not letters:
        print(f"{args.service}: no {'' if status is None else status + ' '}dead letters in {where(settings)}")
        return 0
    rows = [
        [d.id, d.status, d.event_type or "?", d.case_id or "-", d.attempts, when(d.created_at), _short(d.error)]
        for d in letters
    ]
    print(ops.render_table(["id", "status", "event type", "case", "tries", "parked at", "error"], rows))
    print(f"\n{len(letters)} dead letter(s) of {args.service}. `dlq show {args.service} <id>` for one in full.")
    return 0


async def cmd_dlq_show(args: argparse.Namespace) -> int:
    settings = settings_of(args.service)
    letters = await with_engine(args.service, settings, lambda e: ops.get_dead_letters(e, args.ids))
    for d in letters:
        print(f"dead letter {d.id} of {args.service} — {d.status}")
        fields = [
            ("event", f"{d.event_type} {d.event_id}"),
            ("case (key)", d.case_id or "-"),
            ("from", f"{d.topic} partition {d.partition} offset {d.offset}"),
            ("tries", str(d.attempts)),
            ("parked at", when(d.created_at)),
            ("resolved at", when(d.resolved_at)),
            ("note", d.note or "-"),
            ("error", d.error),
            ("headers", ", ".join(f"{k}={v}" for k, v in d.headers)),
            ("body", (d.body or b"").decode(errors="replace")[:2000]),
        ]
        for label, value in fields:
            print(f"  {label:<12} {value}")
        print()
    return 0


async def _pick(args: argparse.Namespace, settings: Any) -> list[ops.DeadLetter]:
    if args.all:
        return await with_engine(args.service, settings, lambda e: ops.list_dead_letters(e, status="parked", limit=100_000))
    if not args.ids:
        raise Fail(f"name the dead letters to act on (ids from `dlq list {args.service}`), or --all")
    return await with_engine(args.service, settings, lambda e: ops.get_dead_letters(e, args.ids))


async def cmd_dlq_replay(args: argparse.Namespace) -> int:
    settings = settings_of(args.service)
    letters = await _pick(args, settings)
    if not letters:
        print(f"{args.service}: no parked dead letters; nothing to replay")
        return 0
    plan = "\n".join(
        [f"Will put {len(letters)} parked event(s) of {args.service} back on their topic (original key and headers):"]
        + [f"  {d.id}: {d.event_type} {d.event_id} → {d.topic}" for d in letters]
        + [f"and mark them replayed in {where(settings)}. {args.service}'s consumer applies each at most once;"
           " other services drop them as duplicates."]
    )
    confirm(plan, args)
    done = await with_engine(
        args.service, settings,
        lambda e: ops.replay_dead_letters(e, settings.kafka_bootstrap_servers, letters, service=args.service),
    )
    print(f"replayed {done} dead letter(s) of {args.service}")
    return 0


async def cmd_dlq_drop(args: argparse.Namespace) -> int:
    settings = settings_of(args.service)
    if not args.reason or not args.reason.strip():
        raise Fail("say why: --reason '…' (kept with the dead letter and logged)")
    letters = await _pick(args, settings)
    if not letters:
        print(f"{args.service}: no parked dead letters; nothing to drop")
        return 0
    plan = "\n".join(
        [f"Will drop {len(letters)} parked event(s) of {args.service} (never applied), because: {args.reason}"]
        + [f"  {d.id}: {d.event_type} {d.event_id}" for d in letters]
    )
    confirm(plan, args)
    done = await with_engine(args.service, settings, lambda e: ops.drop_dead_letters(e, letters, reason=args.reason, service=args.service))
    print(f"dropped {done} dead letter(s) of {args.service}")
    return 0


# -- outbox ---------------------------------------------------------------------------------


async def cmd_outbox_republish(args: argparse.Namespace) -> int:
    settings = settings_of(args.service)
    since = parse_time(args.since)
    count = await with_engine(args.service, settings, lambda e: ops.outbox_sent_since(e, since))
    if count == 0:
        print(f"{args.service}: no outbox rows sent since {when(since)} are retained; nothing to republish")
        return 0
    confirm(
        f"Will mark {count} outbox row(s) of {args.service} sent since {when(since)} as unsent in {where(settings)};\n"
        f"{args.service}'s relay publishes them again to {settings.kafka_topic}, in order, and every consumer drops "
        "the duplicates.",
        args,
    )
    done = await with_engine(args.service, settings, lambda e: ops.republish_outbox(e, since))
    print(f"{done} row(s) of {args.service} queued for publishing again (the relay of a running {args.service} sends them)")
    return 0


# -- replay / rebuild -------------------------------------------------------------------------


async def cmd_replay(args: argparse.Namespace) -> int:
    settings = settings_of(args.service)
    service = entry(args.service)
    if not service.consumes:
        raise Fail(f"{args.service} builds nothing from {settings.kafka_topic}; there is nothing to replay")
    start = ops.parse_start(args.start) if args.start in ("earliest",) or args.start.isdigit() else parse_time(args.start)
    spec = service.spec(settings)
    if not spec.handles or spec.batch_handler is None:
        raise Fail(f"{args.service} handles no events; there is nothing to replay")
    confirm(
        f"Will read {settings.kafka_topic} from {args.start} with a new consumer group and apply {args.service}'s "
        f"handler ({len(spec.handles)} event types) into a fresh database next to {where(settings)}\n"
        f"(nothing is published; the live database and group are not touched), then compare row counts.",
        args,
    )
    interactive = sys.stderr.isatty()
    last = [-1.0]

    def progress(state: ops.ReplayProgress) -> None:
        import time

        now = time.monotonic()
        if interactive or now - last[0] > 2 or (state.target and state.done >= state.target):
            last[0] = now
            end = "\r" if interactive else "\n"
            print(ops.progress_bar(state), end=end, file=sys.stderr, flush=True)

    try:
        report = await ops.rebuild(
            service=args.service,
            settings=settings,
            handles=spec.handles,
            # Made from a context of its own, as the service makes it (the directory as the seed file has it).
            batch_handler=handler_of(spec, context_of(spec, settings)),
            migrations=spec.migrations,
            start=start,
            progress=progress,
            stall_seconds=args.stall_seconds,
        )
    except Exception as exc:
        if _is_database_error(exc):
            raise Fail(database_hint(args.service, settings, exc)) from None
        raise
    if interactive:
        print(file=sys.stderr)
    print(f"\nrebuilt {args.service} from {report.events} event(s) in {report.seconds:.1f}s into database {report.database}")
    print(ops.render_table(["table", "live", "rebuilt", ""], [[t.table, t.live, t.rebuilt, t.verdict] for t in report.tables]))
    if report.parked:
        print(f"\n{report.parked} event(s) failed during the rebuild and were parked in {report.database}")
    if args.drop_after:
        await ops.drop_database(settings, report.database)
        print(f"dropped {report.database}")
    else:
        print(f"\nkept {report.database}: inspect it, or drop it with `DROP DATABASE \"{report.database}\"`")
    return 1 if report.differing or report.parked else 0


# -- parser ----------------------------------------------------------------------------------


def _url_override(value: str) -> tuple[str, str]:
    name, sep, url = value.partition("=")
    if not sep or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected service=http://host:port, got {value!r}")
    return name, url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.ops",
        description="Operations for the 接诉即办 services: status, dead letters, outbox, projection rebuilds.",
        epilog="Addresses and databases come from each service's variables (INTAKE_PORT, INTAKE_DATABASE_URL or "
        "DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, …).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    services = list(SERVICES)

    def with_yes(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
        return p

    status = sub.add_parser("status", help="health, readiness, lag, outbox backlog and DLQ size of every service")
    status.add_argument("services", nargs="*", metavar="service", help="default: all (" + ", ".join(services) + ")")
    status.add_argument("--url", action="append", type=_url_override, default=[], metavar="SERVICE=URL",
                        help="where a service answers, if not on its HOST:PORT")
    status.set_defaults(run=cmd_status)

    dlq = sub.add_parser("dlq", help="dead-lettered events").add_subparsers(dest="action", required=True)
    p = dlq.add_parser("list", help="dead letters with their error")
    p.add_argument("service", choices=services)
    p.add_argument("--status", choices=["parked", "replayed", "dropped", "all"], default="parked")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(run=cmd_dlq_list)
    p = dlq.add_parser("show", help="dead letters in full")
    p.add_argument("service", choices=services)
    p.add_argument("ids", type=int, nargs="+")
    p.set_defaults(run=cmd_dlq_show)
    p = with_yes(dlq.add_parser("replay", help="put parked events back on the topic after a fix"))
    p.add_argument("service", choices=services)
    p.add_argument("ids", type=int, nargs="*")
    p.add_argument("--all", action="store_true", help="every parked dead letter of the service")
    p.set_defaults(run=cmd_dlq_replay)
    p = with_yes(dlq.add_parser("drop", help="give up on parked events, with a reason"))
    p.add_argument("service", choices=services)
    p.add_argument("ids", type=int, nargs="*")
    p.add_argument("--all", action="store_true")
    p.add_argument("--reason", required=True)
    p.set_defaults(run=cmd_dlq_drop)

    p = with_yes(sub.add_parser("replay", help="rebuild a service's projections from the topic into a fresh database"))
    p.add_argument("service", choices=services)
    p.add_argument("--from", dest="start", default="earliest", help="earliest (default), an offset, or a time")
    p.add_argument("--drop-after", action="store_true", help="drop the fresh database after the comparison")
    p.add_argument("--stall-seconds", type=float, default=60, help="give up after this long without progress")
    p.set_defaults(run=cmd_replay)

    outbox = sub.add_parser("outbox", help="the transactional outbox").add_subparsers(dest="action", required=True)
    p = with_yes(outbox.add_parser("republish", help="publish retained rows again (consumers drop duplicates)"))
    p.add_argument("service", choices=services)
    p.add_argument("--since", required=True, help="a time (ISO-8601) or a span back from now: 30m, 2h, 1d")
    p.set_defaults(run=cmd_outbox_republish)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The services' start-up chatter (settings, org seeds) is not for this tool's output.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    args = build_parser().parse_args(argv)
    if args.command == "status":
        bad = [s for s in args.services if s not in SERVICES]
        if bad:
            print(f"unknown service {', '.join(bad)}; known: {', '.join(SERVICES)}", file=sys.stderr)
            return 2
        args.url = dict(args.url)
    try:
        return asyncio.run(args.run(args))
    except (Fail, ops.OpsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
