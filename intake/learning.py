"""学习: the county's centre teaches the subject model, and each version is evaluated first.

- **Examples.** Every manual triage (the class the dispatcher chose) and every upheld return
  (退单 upheld: the owner was wrong; the class is the one whose catalogue line owns the case
  for the unit it was re-dispatched to) is stored in ``training_examples`` with who, when
  and why (:func:`add_example`).
- **Versions.** :func:`retrain` trains a candidate on the demo appeals and every stored
  example, evaluates it and the current version *on the same examples*
  (``intake.model.evaluate``), records both in ``model_versions`` and promotes the candidate
  only if it is not worse (``intake.model.not_worse``). ``python -m intake.model retrain``
  runs it; ``INTAKE_RETRAIN_EVERY_HOURS`` runs it on a schedule.
- **Serving.** :class:`ModelHolder` builds the newest promoted version at start-up (the
  demo appeals plus the examples it learnt: training is deterministic and takes a fraction
  of a second, so no model file is kept) and every replica rebuilds it when a newer version
  is promoted (``INTAKE_MODEL_CHECK_SECONDS``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from intake.model import DEFAULT_THRESHOLD, Example, SubjectModel, evaluate, load_examples, not_worse, train, trainable
from intake.models import training_examples
from shared.orgdata import SUBJECT_CLASSES, TOWNSHIP, OrgDirectory

log = logging.getLogger(__name__)

MANUAL_TRIAGE = "manual_triage"
RETURN_UPHELD = "return_upheld"
# One retraining at a time across replicas and the command (a PostgreSQL advisory lock).
RETRAIN_LOCK = 26_0002


# --------------------------------------------------------------------------- examples


def class_owned_by(org: OrgDirectory, unit: str, area: str, text: str) -> str | None:
    """The subject class whose catalogue line, for this appeal's area and text, names ``unit``
    as owner — the class an upheld return re-dispatched to ``unit`` says the appeal was.

    None when no class or more than one leads there (a township owns many classes: the
    return then says who, not what, and teaches the model nothing certain)."""
    classes = []
    for code in SUBJECT_CLASSES:
        try:
            entry = org.entry_for(code, area, text)
        except LookupError:
            continue
        if entry.owner == unit or (entry.owner == TOWNSHIP and org.township_of(area) == unit):
            classes.append(code)
    return classes[0] if len(classes) == 1 else None


async def add_example(
    session: AsyncSession,
    *,
    event_id: uuid.UUID | str,
    case_id: str,
    title: str,
    description: str,
    subject_class: str,
    proposed_class: str | None,
    source: str,
    actor_id: str,
    reason: str | None,
) -> None:
    """Store one labelled appeal in the caller's transaction; the same decision again adds nothing."""
    await session.execute(
        pg_insert(training_examples).on_conflict_do_nothing(index_elements=["event_id"]).values(
            event_id=uuid.UUID(str(event_id)), case_id=case_id, title=title, description=description,
            subject_class=subject_class, proposed_class=proposed_class, source=source, actor_id=actor_id, reason=reason,
        )
    )  # fmt: skip


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class Version:
    """A promoted version: its number (0: the demo appeals only), what it learnt, its evaluation."""

    number: int
    examples_upto: int
    evaluation: dict[str, Any] | None

    @property
    def name(self) -> str:
        return f"v{self.number}" if self.number else "demo"


DEMO_VERSION = Version(0, 0, None)


async def current_version(conn: asyncpg.Connection | asyncpg.Pool) -> Version:
    row = await conn.fetchrow(
        "SELECT version, examples_upto, evaluation FROM model_versions WHERE promoted ORDER BY version DESC LIMIT 1"
    )
    if row is None:
        return DEMO_VERSION
    evaluation = row["evaluation"]
    return Version(row["version"], row["examples_upto"], json.loads(evaluation) if isinstance(evaluation, str) else evaluation)


async def stored_examples(conn: asyncpg.Connection | asyncpg.Pool, upto: int | None = None) -> list[tuple[int, Example]]:
    """(id, example), oldest first; with ``upto`` only those a version learnt."""
    rows = await conn.fetch(
        "SELECT id, title, description, subject_class FROM training_examples WHERE $1::bigint IS NULL OR id <= $1 ORDER BY id",
        upto,
    )
    return [(r["id"], Example(r["title"], r["description"], r["subject_class"])) for r in rows]


def build(demo: Sequence[Example], own: Sequence[Example], version: Version, threshold: float) -> SubjectModel:
    return train(trainable([*demo, *own]), threshold=threshold, version=version.name)


async def retrain(pool: asyncpg.Pool, *, threshold: float = DEFAULT_THRESHOLD, trigger: str = "command",
                  not_within_hours: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Train a candidate on the demo appeals and every stored example, evaluate it next to the
    current version on the same examples, record both, promote the candidate if not worse.

    ``not_within_hours`` (the schedule): do nothing when a version was recorded that recently
    — every replica runs the schedule, one retraining per period is enough."""
    demo = load_examples()
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RETRAIN_LOCK):
            return {"outcome": "skipped", "why": "another retraining is running"}
        if not_within_hours is not None and await conn.fetchval(
            "SELECT count(*) FROM model_versions WHERE created_at > now() - make_interval(secs => $1)", not_within_hours * 3600
        ):
            return {"outcome": "skipped", "why": f"a version was trained within {not_within_hours} h"}
        current = await current_version(conn)
        rows = await stored_examples(conn)
        upto = rows[-1][0] if rows else 0
        # Nothing stored since the last candidate (promoted or not): it would be that candidate again.
        if upto <= (await conn.fetchval("SELECT coalesce(max(examples_upto), 0) FROM model_versions")):
            return {"outcome": "skipped", "why": "no new examples since the last candidate", "current": current.name}
        own = [e for _, e in rows]
        learnt = sum(1 for i, _ in rows if i <= current.examples_upto)
        started = time.perf_counter()
        candidate, incumbent = await asyncio.to_thread(
            lambda: (evaluate(demo, own, threshold=threshold), evaluate(demo, own, learns=learnt, threshold=threshold))
        )
        promoted = not_worse(candidate, incumbent)
        evaluation = {
            "candidate": candidate.as_dict(),
            "current": {"version": current.name, **incumbent.as_dict()},
            "seconds": round(time.perf_counter() - started, 2),
        }
        number = await conn.fetchval(
            """INSERT INTO model_versions (examples_upto, trained_on, evaluation, promoted, trigger)
               VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING version""",
            upto, len(trainable([*demo, *own])), json.dumps(evaluation), promoted, trigger,
        )  # fmt: skip
    log.info("model v%d %s: %s", number, "promoted" if promoted else "not promoted (worse than the current)", evaluation)
    return {"outcome": "promoted" if promoted else "rejected", "version": f"v{number}", "evaluation": evaluation}


async def retrain_from_settings() -> dict[str, Any]:
    """The command: intake's settings (INTAKE_DATABASE_URL …), one retraining."""
    from intake.appeal_store import asyncpg_dsn
    from intake.settings import IntakeSettings
    from shared.settings import load_settings

    settings = load_settings(IntakeSettings)
    pool = await asyncpg.create_pool(asyncpg_dsn(settings.async_database_url), min_size=1, max_size=1)
    try:
        return await retrain(pool, threshold=settings.triage_threshold, trigger="command")
    finally:
        await pool.close()


# --------------------------------------------------------------------------- serving


class ModelHolder:
    """The version that routes, in this replica. Read on the hot path as an attribute."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.demo = load_examples()
        self.version = DEMO_VERSION
        self.model: SubjectModel = train(self.demo, threshold=threshold)
        self._tasks: list[asyncio.Task] = []

    async def load(self, pool: asyncpg.Pool) -> float:
        """Build the newest promoted version (if newer than the one held); returns the seconds it took."""
        started = time.perf_counter()
        version = await current_version(pool)
        if version.number == self.version.number:
            return 0.0
        own = [e for _, e in await stored_examples(pool, version.examples_upto)]
        self.model = await asyncio.to_thread(build, self.demo, own, version, self.threshold)
        self.version = version
        seconds = time.perf_counter() - started
        log.info("subject model %s built from %d examples in %.2f s", version.name, self.model.trained_on, seconds)
        return seconds

    def start(self, pool: asyncpg.Pool, *, check_seconds: float, retrain_every_hours: float) -> None:
        if check_seconds > 0:
            self._tasks.append(asyncio.create_task(self._follow(pool, check_seconds)))
        if retrain_every_hours > 0:
            self._tasks.append(asyncio.create_task(self._schedule(pool, retrain_every_hours)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _follow(self, pool: asyncpg.Pool, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.load(pool)
            except Exception:  # a failed check keeps the version held; the next one tries again
                log.exception("could not check for a newer subject model")

    async def _schedule(self, pool: asyncpg.Pool, hours: float) -> None:
        while True:
            await asyncio.sleep(hours * 3600)
            try:
                await retrain(pool, threshold=self.threshold, trigger="schedule", not_within_hours=hours * 0.9)
                await self.load(pool)
            except Exception:
                log.exception("scheduled retraining failed; the current version keeps routing")
