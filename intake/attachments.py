"""Photos and documents citizens attach to an appeal: ``POST /api/v1/attachments``.

What a file *is* is read from its first bytes, never from its name or the declared type
(a ``.jpg`` that is really an executable is refused). Accepted: JPEG, PNG, WebP, PDF, up
to ``INTAKE_ATTACHMENT_MAX_BYTES`` (10 MB by default). The bytes go to an
``AttachmentStore`` keyed by their SHA-256 — the same photo sent twice (a retry on a bad
mobile connection) is stored once and answered with the same id. The database keeps only
the metadata; an appeal names attachments by id, and filing refuses unknown ids.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from intake.models import attachments
from intake.api import ContextDep
from intake.storage import sniff
from shared.actors import ActorDep
from intake.service import IntakeContext
from shared.db import UnitOfWork
from shared.errors import Invalid, NotFound
from shared.events import Actor, new_attachment_id
from shared.scope import STAFF_ROLES, require_role
from shared.problems import Problem  # the edge's own refusals: the upload too large, not a type it reads
from shared.service import UowDep

CHUNK = 256 * 1024


class AttachmentCreated(BaseModel):
    id: str
    content_type: str
    size: int
    sha256: str


router = APIRouter(prefix="/api/v1", tags=["attachments"])


@router.post(
    "/attachments",
    status_code=201,
    response_model=AttachmentCreated,
    summary="Upload a photo or document (JPEG, PNG, WebP, PDF)",
)
async def upload_attachment(
    file: Annotated[UploadFile, File(description="the file; its type is read from its content")],
    ctx: ContextDep,
    uow: UowDep,
) -> AttachmentCreated:
    limit = ctx.settings.attachment_max_bytes
    spool = Path(tempfile.mkstemp(dir=ctx.attachment_spool, prefix="upload-")[1])
    try:
        digest, size, head = await _copy_counting(file, spool, limit)
        if size == 0:
            raise Invalid("the file is empty", code="empty-attachment", field="file")
        content_type = sniff(head)
        if content_type is None:
            raise Problem(
                415, "only JPEG, PNG, WebP and PDF files are accepted (checked from the content, not the name)",
                slug="unsupported-attachment", declared=file.content_type,
            )
        await ctx.attachment_store.put(digest, spool)
    finally:
        spool.unlink(missing_ok=True)
    async with uow:
        row = await _record(uow.session, digest, content_type, size)
        await uow.commit()
    return AttachmentCreated(id=row.id, content_type=row.content_type, size=row.size, sha256=digest)


@router.get("/attachments/{attachment_id}", summary="Download an attachment (staff)", response_class=Response)
async def download_attachment(attachment_id: str, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> Response:
    content_type, body = await attachment_for(uow, ctx, actor, attachment_id)
    return Response(body, media_type=content_type, headers={"Cache-Control": "private, max-age=86400"})


async def attachment_for(uow: UnitOfWork, ctx: IntakeContext, actor: Actor, attachment_id: str) -> tuple[str, bytes]:
    """An attachment's type and bytes, for staff only: photos show people and homes (the
    citizen keeps the photo they took). The id is random, so a staff member still needs it
    from a case they may see."""
    require_role(actor, STAFF_ROLES, "download attachments")
    async with uow:
        row = (await uow.session.execute(select(attachments).where(attachments.c.id == attachment_id))).first()
    if row is None:
        raise NotFound(f"no attachment {attachment_id}")
    return row.content_type, await ctx.attachment_store.get(row.sha256)


async def _copy_counting(file: UploadFile, target: Path, limit: int) -> tuple[str, int, bytes]:
    """Copy the upload to ``target``, hashing and counting; 413 past ``limit``."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with target.open("wb") as out:
        while chunk := await file.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise Problem(413, f"attachment over {limit} bytes", slug="attachment-too-large", limit=limit)
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size, head


async def _record(session: AsyncSession, digest: str, content_type: str, size: int):
    """Insert the metadata, or return the row of the same file uploaded before."""
    new_id = new_attachment_id()  # random: an id tells nothing about the file (the form: shared.events.AttachmentId)
    stmt = pg_insert(attachments).values(id=new_id, sha256=digest, content_type=content_type, size=size)
    # DO UPDATE (a no-op) rather than DO NOTHING so that RETURNING gives the existing row too.
    stmt = stmt.on_conflict_do_update(index_elements=["sha256"], set_={"sha256": stmt.excluded.sha256})
    return (await session.execute(stmt.returning(attachments))).one()
