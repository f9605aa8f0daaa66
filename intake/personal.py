"""A citizen's contact details in clear, for the staff who handle the appeal — every view
audited — and the rotation of the keys they are sealed with (PIPL; GB/T 35273-2020).

Lists, events, logs and notices only ever carry the masked phone. Whoever must call the
citizen back (the handling unit, the township, the centre, the grid worker on the spot)
asks for the details with a reason; the answer is written to ``contact_views`` first (who,
when, which case, why), so no view goes unrecorded. The auditor reads that log, not the data.

Rotation: put a new key last in ``INTAKE_PII_KEYS`` (it encrypts from then on), run
``python -m intake.personal rotate`` to re-encrypt every stored value under it (in batches,
with progress; safe to re-run), then drop the old key from the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from intake.api import ContextDep, JsonBody
from intake.models import appeals, contact_views
from intake.service import ADDRESS_CONTEXT, ID_CONTEXT, NAME_CONTEXT, PHONE_CONTEXT, IntakeContext, visible_appeal
from shared.actors import ActorDep
from shared.crypto import KeyRing
from shared.events import Role
from shared.http import PG_BIGINT_MAX
from shared.permissions import permit
from shared.paging import decode_cursor, encode_cursor
from shared.scope import require_role
from shared.service import UowDep

router = APIRouter(prefix="/api/v1", tags=["personal data"])

# The columns holding sealed personal data, each with the context it was sealed under.
SEALED = {"contact_name_enc": NAME_CONTEXT, "phone_enc": PHONE_CONTEXT, "id_number_enc": ID_CONTEXT, "address_enc": ADDRESS_CONTEXT}


class ViewRequest(BaseModel):
    reason: str = Field(min_length=2, max_length=200, description="why the details are needed, e.g. 电话回访核实情况")


class ContactDetails(BaseModel):
    case_id: str
    name: str
    phone: str
    id_number: str | None
    address: str | None
    view_id: int = Field(description="the audit record of this view")


@router.post(
    "/appeals/{case_id}/contact", response_model=ContactDetails, dependencies=[permit("intake.contact"), JsonBody],
    summary="The citizen's contact details in clear, with a reason (each view audited)",
)
async def view_contact(case_id: str, body: ViewRequest, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> ContactDetails:
    async with uow:
        row = await visible_appeal(uow, ctx, actor, case_id)
        view_id = (
            await uow.session.execute(
                insert(contact_views)
                .values(case_id=case_id, actor_id=actor.id, role=actor.role.value, unit=actor.org_unit, reason=body.reason)
                .returning(contact_views.c.id)
            )
        ).scalar_one()
        await uow.commit()  # the record is kept before anything is shown
    keys = ctx.keys
    return ContactDetails(
        case_id=case_id, view_id=view_id,
        name=keys.decrypt(row.contact_name_enc, context=NAME_CONTEXT),
        phone=keys.decrypt(row.phone_enc, context=PHONE_CONTEXT),
        id_number=keys.decrypt(row.id_number_enc, context=ID_CONTEXT) if row.id_number_enc else None,
        address=keys.decrypt(row.address_enc, context=ADDRESS_CONTEXT) if row.address_enc else None,
    )  # fmt: skip


class ContactView(BaseModel):
    id: int
    case_id: str
    actor_id: str
    role: str
    unit: str | None
    reason: str
    viewed_at: datetime


class ContactViewPage(BaseModel):
    items: list[ContactView]
    next_cursor: str | None


@router.get("/audit/contact-views", response_model=ContactViewPage, summary="Who saw which citizen's details, when and why (auditor)")
async def contact_view_log(
    uow: UowDep,
    actor: ActorDep,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: Annotated[str | None, Query(max_length=128)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ContactViewPage:
    require_role(actor, (Role.auditor,), "read the log of contact views")
    query = select(contact_views)
    if case_id:
        query = query.where(contact_views.c.case_id == case_id)
    if actor_id:
        query = query.where(contact_views.c.actor_id == actor_id)
    before = decode_cursor(cursor)
    if before is not None:
        at, view_id = before[0], int(before[1]) if before[1].isdigit() and int(before[1]) <= PG_BIGINT_MAX else 0
        query = query.where(or_(contact_views.c.viewed_at < at, and_(contact_views.c.viewed_at == at, contact_views.c.id < view_id)))
    async with uow:
        rows = (await uow.session.execute(query.order_by(contact_views.c.viewed_at.desc(), contact_views.c.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return ContactViewPage(
        items=[ContactView.model_validate(r._asdict()) for r in page],
        next_cursor=encode_cursor(page[-1].viewed_at, str(page[-1].id)) if len(rows) > limit else None,
    )


# --------------------------------------------------------------------------- key rotation


def rotated_values(keys: KeyRing, row: Any) -> dict[str, str]:
    """The sealed columns of a row that are not under the current key, re-encrypted."""
    return {
        column: keys.rotate(getattr(row, column), context=context)
        for column, context in SEALED.items()
        if getattr(row, column) and keys.needs_rotation(getattr(row, column))
    }


async def rotate_keys(engine: AsyncEngine, keys: KeyRing, *, batch: int = 500, progress=print) -> int:  # noqa: ANN001
    """Re-encrypt every appeal's personal data under the current key; the number of rows
    rewritten. Walks the table by case id in batches, each its own transaction."""
    rewritten, after = 0, ""
    columns = [appeals.c.case_id, *(appeals.c[c] for c in SEALED)]
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(select(*columns).where(appeals.c.case_id > after).order_by(appeals.c.case_id).limit(batch))
            ).all()
            if not rows:
                break
            for row in rows:
                values = rotated_values(keys, row)
                if values:
                    await conn.execute(update(appeals).where(appeals.c.case_id == row.case_id).values(**values))
                    rewritten += 1
        after = rows[-1].case_id
        progress(f"rotated {rewritten} appeals so far (up to case {after})")
    progress(f"done: {rewritten} appeals re-encrypted under key {keys.current}")
    return rewritten


def main(argv: list[str] | None = None) -> int:
    from intake.settings import IntakeSettings
    from shared.db import create_engine
    from shared.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m intake.personal", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["rotate"], help="re-encrypt stored personal data under the newest key")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    settings = load_settings(IntakeSettings)
    keys = IntakeContext.keyring(settings)

    async def run() -> int:
        engine = create_engine(settings.async_database_url, pool_size=2)
        try:
            return await rotate_keys(engine, keys, batch=args.batch, progress=lambda line: print(line, file=sys.stderr))
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
