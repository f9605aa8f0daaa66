"""Directory service: FastAPI app factory.

The organisation directory — units, users, the dispatch catalogue (派单目录) — as
versioned documents in its own database, edited through the admin API and published on
the topic ``org-directory`` so the other services keep their own copy
(``shared.orgfollow.OrgFollower``) and never call it on their hot path.
"""

import logging
from pathlib import Path

from fastapi import FastAPI

from services.directory import service
from services.directory.api import router
from services.directory.publisher import SnapshotPublisher
from services.directory.settings import DirectorySettings
from shared.orgdata import OrgDataError
from shared.service import Runtime, ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

log = logging.getLogger(__name__)


async def _start(runtime: Runtime) -> None:
    settings: DirectorySettings = runtime.settings  # type: ignore[assignment]
    ctx: service.DirectoryContext = runtime.context
    ctx.publisher = SnapshotPublisher(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.org_topic,
        replication_factor=settings.kafka_replication_factor,
        new_uow=runtime.uow,
        retry_seconds=settings.publish_retry_seconds,
        epoch_check_seconds=settings.broker_epoch_check_seconds,
        holiday_topic=settings.holiday_topic,
    )
    try:
        await service.seed(ctx, runtime.uow(), settings.seed_file)
    except (OrgDataError, OSError) as exc:
        log.error("cannot seed the directory from %s (set DIRECTORY_SEED_FILE): %s", settings.seed_file, exc)
        raise
    # Publishes the current version first: a crash between commit and publish, or an empty
    # broker, heals at the next start.
    ctx.publisher.start()


async def _stop(runtime: Runtime) -> None:
    ctx: service.DirectoryContext = runtime.context
    if ctx.publisher is not None:
        await ctx.publisher.stop(runtime.settings.shutdown_grace_seconds)


SPEC = ServiceSpec(
    name="directory",
    title="接诉即办 · Organisation directory",
    description=(
        "City → county → township → village → grid, county departments and command centres, users with "
        "their roles, and the dispatch catalogue (派单目录). Every change is validated as a whole, kept as a "
        "new version and published on the topic org-directory."
    ),
    settings_cls=DirectorySettings,
    router=router,
    handles=frozenset(),  # reads nothing from the lifecycle topic
    publishes=frozenset(),  # its org snapshots go on org-directory, not through the outbox
    context=service.DirectoryContext,
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=_start,
    on_shutdown=_stop,
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(DirectorySettings))
