"""The citizen's page and its small API, served by notify because notify owns what it needs:
the one-time rating tokens, the look-up codes, the citizen's (sealed) phone and the SMS
channel, and — kept from the topic it consumes — the answer, the public summary and the
public timeline. It reads nothing from intake (services talk through the topic).

- ``GET /citizen/rate?case=…&round=…&token=…``: the page the closing SMS links to
  (NOTIFY_RATING_URL): the answer, then 满意/基本满意/不满意 and a comment, once.
- ``GET /citizen/lookup``: the look-up by tracking number with a one-time SMS code.

A phone-sized page in Chinese, its own script and style only: no third-party asset, no
tracking, no referrer (the link carries the token), nothing cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from notify import service
from notify.service import NotifyContext
from shared.problems import Problem
from shared.service import UowDep, service_context

router = APIRouter(tags=["citizen"])
ContextDep = Annotated[NotifyContext, Depends(service_context)]
STATIC = Path(__file__).parent / "static"

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
}
TRACKING_NO = r"^[A-Za-z0-9-]{4,32}$"


# The page (one file for both of its addresses: the script reads which from the path) and its own
# script and style, each with the page's headers; route → (name, file, media type).
PAGE_FILES = {
    "/citizen/rate": ("rate_page", "citizen.html", "text/html; charset=utf-8"),
    "/citizen/lookup": ("lookup_page", "citizen.html", "text/html; charset=utf-8"),
    "/citizen/static/citizen.js": ("script", "citizen.js", "text/javascript; charset=utf-8"),
    "/citizen/static/citizen.css": ("style", "citizen.css", "text/css; charset=utf-8"),
}


def _file_route(file: str, media_type: str) -> Any:
    async def serve() -> FileResponse:
        return FileResponse(STATIC / file, media_type=media_type, headers=PAGE_HEADERS)

    return serve


for _path, (_name, _file, _media_type) in PAGE_FILES.items():
    router.add_api_route(_path, _file_route(_file, _media_type), methods=["GET"], name=_name, include_in_schema=False)


@router.get("/api/v1/citizen/rating", summary="The citizen's rating link opened: the answer to read (the token is checked, not spent)")
async def rating_view(
    uow: UowDep, ctx: ContextDep, case: str = Query(max_length=64), token: str = Query(min_length=8, max_length=128)
) -> dict[str, Any]:
    async with uow:
        return await service.rating_page(uow, ctx, case, token)


class CodeRequest(BaseModel):
    tracking_no: str = Field(pattern=TRACKING_NO, description="the appeal's tracking number (编号)")


SENT = "若编号正确，验证码已发送至提交诉求时登记的手机。"


@router.post("/api/v1/citizen/lookup/code", status_code=202, summary="Send a one-time look-up code by SMS to the appeal's phone")
async def send_code(body: CodeRequest, uow: UowDep, ctx: ContextDep) -> dict[str, Any]:
    # The same answer whether or not the number exists: the page does not tell who filed what.
    try:
        await service.send_lookup_code(uow, ctx, body.tracking_no)
    except service.TooSoon as exc:
        wait = max(1, int((exc.until - ctx.now()).total_seconds()) + 1)
        raise Problem(429, f"请{wait}秒后再获取验证码", slug="lookup-code-too-soon", headers={"Retry-After": str(wait)},
                      retry_after_seconds=wait) from None  # fmt: skip
    return {"detail": SENT, "expires_in_minutes": ctx.settings.lookup_code_minutes}


class LookupIn(BaseModel):
    tracking_no: str = Field(pattern=TRACKING_NO)
    code: str = Field(pattern=r"^\s*\d{6}\s*$", description="the 6-digit code from the SMS")


REFUSALS = {
    "wrong": "验证码不正确",
    "locked": "验证码错误次数过多，已锁定；请稍后重新获取验证码",
    "expired": "验证码已过期，请重新获取",
    "none": "验证码无效或已使用，请重新获取",
}


@router.post(
    "/api/v1/citizen/lookup", summary="An appeal's status and public timeline, with the one-time code sent to its phone",
    responses={403: {"description": "the code is wrong, used, expired or locked (`tries_left` says how many tries remain)"}},
)
async def look_up(body: LookupIn, uow: UowDep, ctx: ContextDep) -> dict[str, Any]:
    try:
        return await service.look_up(uow, ctx, body.tracking_no, body.code.strip())
    except service.CodeRefused as exc:
        check = exc.check
        raise Problem(403, REFUSALS[check.verdict], slug=f"lookup-code-{check.verdict}", tries_left=check.tries_left) from None
