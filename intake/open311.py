"""Open311 GeoReport v2 (``/open311/v2``): the standard API of citizen-report clients.

Services are our subject classes (names in Chinese); requests are appeals filed through
the same path as every other channel. JSON and XML, form-encoded POST as the spec says,
errors in the spec's format: ``[{"code": 400, "description": "…"}]``. Our practice needs a
phone number to call the citizen back, so ``phone`` is required (declared in each service
definition). Status maps to ``open`` / ``closed``.

Reading requests is open to anyone, so it shows what a council would publish (docs/rules.md,
"Public feeds"): accepted appeals only — not those waiting for manual triage, declined or
merged into another — of the counties and subject classes that publish
(``INTAKE_OPEN311_PUBLISH``; by default every county, every class); the description with
personal data masked (``shared.privacy.redact_for_public``), the point rounded to about 100 m,
never a name or a phone. Any other id answers the spec's 404, like an unknown one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from intake import repository
from intake.api import ContextDep
from intake.settings import Publishing
from intake.classify import SUBJECT_CLASSES
from intake.domain import PHONE_PATTERN
from intake.service import AppealInput, citizen_actor, file_appeal
from shared.db import UnitOfWork
from shared.edge import IsoDateTime
from shared.events import Channel
from shared.privacy import redact_for_public, round_coordinate
from shared.openapi import RATE_LIMITED
from shared.ratelimit import retry_after_header
from shared.service import UowDep

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])
Format = Literal["json", "xml"]
CLOSED = {"closed", "rated"}
# What a council publishes: appeals accepted and placed (triaged) and everything after. Not
# received, waiting for manual triage (triage), declined (rejected) or merged into another.
PUBLISHED_STATUSES = (
    "triaged", "dispatched", "in_progress", "returned", "called", "suspended",
    "resolved", "verified", "closed", "rated", "reopened",
)  # fmt: skip


def is_published(row: Any, publishing: Publishing | None) -> bool:
    """Whether the public feed shows this appeal: published status, and a county and subject
    class that publish (``publishing`` None: every county, every class)."""
    if row.status not in PUBLISHED_STATUSES:
        return False
    if publishing is None:
        return True
    classes = publishing.get(row.county or "")
    return classes is not None and ("*" in classes or row.subject_class in classes)

_DESCRIPTIONS = {
    "infrastructure": "路灯、城市道路和桥梁、人行道、排水、井盖、公厕等市政设施问题",
    "environment": "垃圾、污水、噪音、空气等生态环境问题",
    "public_safety": "安全隐患、治安等公共安全问题",
    "social_security": "养老、低保、医保等社会保障问题",
    "disputes": "邻里、劳资等矛盾纠纷",
    "consultation": "政策咨询",
    "agriculture": "农田、灌溉、鱼塘等农业农村问题",
    "transport": "公交、客运、出租车、公路和农村公路（国道、县道、村道及其桥梁）等交通运输问题",
    "housing": "房屋、危房、物业、电梯等住房建设问题",
    "education": "入学、学校、教师、培训机构等教育问题",
    "health": "医院、诊所、疫苗、生育等卫生健康问题",
    "market": "商品质量、价格、食品安全、传销等市场监管问题",
    "culture_tourism": "景区、文物、文化体育设施等文化旅游问题",
    "police": "治安、户籍、交通违法等公安交警问题",
    "urban_management": "占道经营、乱搭乱建、市容等城市管理问题",
    "power": "停电、电压、电费等供电问题",
    "water_supply": "停水、水质、水费等供水问题",
    "gas": "燃气供应、燃气费等燃气问题",
    "telecom": "网络、信号、宽带等通信问题",
    "civil_affairs": "低保、养老院、婚姻登记、殡葬等民政问题",
    "labour": "欠薪、劳动合同、就业等劳动问题",
    "land": "土地、宅基地、矿产等自然资源问题",
    "other": "其他诉求",
}


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _render(data: Any, fmt: Format, root: str, item: str, status: int = 200) -> Response:
    if fmt == "json":
        return JSONResponse(jsonable_encoder(data), status_code=status)
    top = ET.Element(root)
    for entry in data:
        node = ET.SubElement(top, item)
        for key, value in entry.items():
            child = ET.SubElement(node, key)
            if isinstance(value, list):
                for sub in value:
                    inner = ET.SubElement(child, "attribute" if isinstance(sub, dict) else "keyword")
                    if isinstance(sub, dict):
                        for k, v in sub.items():
                            ET.SubElement(inner, k).text = _text(v)
                    else:
                        inner.text = _text(sub)
            else:
                child.text = _text(value)
    body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def error_response(status: int, description: str, fmt: Format) -> Response:
    return _render([{"code": status, "description": description}], fmt, "errors", "error", status=status)


def _service(code: str) -> dict[str, Any]:
    return {
        "service_code": code,
        "service_name": SUBJECT_CLASSES[code],
        "description": _DESCRIPTIONS.get(code, SUBJECT_CLASSES[code]),
        "metadata": True,
        "type": "realtime",
        "keywords": code,
        "group": "接诉即办",
    }


@router.get("/services.{fmt}", summary="Service list (our subject classes)")
async def services(fmt: Format) -> Response:
    return _render([_service(code) for code in SUBJECT_CLASSES], fmt, "services", "service")


@router.get("/services/{code}.{fmt}", summary="Service definition")
async def service_definition(code: str, fmt: Format) -> Response:
    if code not in SUBJECT_CLASSES:
        return error_response(404, f"service_code {code} not found", fmt)
    definition = {
        "service_code": code,
        "attributes": [
            {
                "variable": True, "code": "phone", "datatype": "string", "required": True, "order": 1,
                "description": "联系电话（用于回访，全程脱敏显示）", "datatype_description": "mobile number",
            }
        ],
    }
    if fmt == "json":
        return JSONResponse(definition)
    top = ET.Element("service_definition")
    ET.SubElement(top, "service_code").text = code
    attributes = ET.SubElement(top, "attributes")
    for attribute in definition["attributes"]:
        node = ET.SubElement(attributes, "attribute")
        for key, value in attribute.items():
            ET.SubElement(node, key).text = _text(value)
    return Response(b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8"), media_type="text/xml; charset=utf-8")


@router.post("/requests.{fmt}", status_code=201, responses=RATE_LIMITED, summary="Create a service request (form-encoded, as the spec says)")
async def create_request(
    fmt: Format,
    request: Request,
    ctx: ContextDep,
    service_code: str = Form(...),
    description: str = Form("", max_length=5000),
    lat: float | None = Form(None, ge=-90, le=90),
    long: float | None = Form(None, ge=-180, le=180),
    address_string: str | None = Form(None, max_length=300),
    first_name: str | None = Form(None, max_length=32),
    last_name: str | None = Form(None, max_length=32),
    phone: str | None = Form(None, max_length=20),
    api_key: str | None = Form(None),
    media_url: str | None = Form(None, max_length=500),
) -> Response:
    del api_key, media_url  # api_key is checked by the security layer (issue #9); media by attachments
    if service_code not in SUBJECT_CLASSES:
        return error_response(400, f"service_code {service_code} not found", fmt)
    if lat is None and long is None and not address_string:
        return error_response(400, "a location is required: lat and long, or address_string", fmt)
    if (lat is None) != (long is None):
        return error_response(400, "give both lat and long", fmt)
    if not phone or not re.fullmatch(PHONE_PATTERN, phone):
        return error_response(400, "phone is required (the citizen is called back): digits, 6–20, a leading + allowed", fmt)
    if not description.strip():
        return error_response(400, "description is required", fmt)
    over = ctx.too_many(phone=phone, client=request.client.host if request.client else "unknown")
    if over is not None:
        refused = error_response(429, "too many requests; try again later", fmt)
        refused.headers.update(retry_after_header(over[1]))
        return refused
    name = f"{last_name or ''}{first_name or ''}".strip() or "市民"
    title = description.strip().splitlines()[0][:40]
    filed = await file_appeal(
        ctx,
        AppealInput(
            title=title, description=description, channel=Channel.open311, contact_name=name, phone=phone,
            address=address_string, lat=lat, lng=long,
        ),
        actor=citizen_actor(phone),
    )
    notice = f"已受理，受理编号 {filed.tracking_no}" if filed.status != "rejected" else (filed.rejection or "未予受理")
    return _render(
        [{"service_request_id": filed.case_id, "service_notice": notice, "account_id": None}],
        fmt, "service_requests", "request", status=201,
    )


def _request_view(row: Any) -> dict[str, Any]:
    return {
        "service_request_id": row.case_id,
        "status": "closed" if row.status in CLOSED else "open",
        "status_notes": row.status,
        "service_name": SUBJECT_CLASSES.get(row.subject_class or "other", "其他"),
        "service_code": row.subject_class,
        "description": redact_for_public(row.description),
        "agency_responsible": row.township,
        "service_notice": row.tracking_no,
        "requested_datetime": row.created_at,
        "updated_datetime": row.updated_at,
        "expected_datetime": None,
        "address": row.street,
        "address_id": None,
        "zipcode": None,
        "lat": round_coordinate(row.lat),
        "long": round_coordinate(row.lng),
        "media_url": None,
    }


@router.get(
    "/requests.{fmt}", summary="Service requests, with the spec's filters",
    description="Published appeals only (accepted, of the counties and classes that publish), descriptions "
    "with personal data masked, points rounded to 3 decimals.",
)
async def list_requests(
    fmt: Format,
    uow: UowDep,
    ctx: ContextDep,
    service_request_id: str | None = Query(None, max_length=2000),
    service_code: str | None = Query(None, max_length=64),
    start_date: IsoDateTime | None = None,
    end_date: IsoDateTime | None = None,
    status: Literal["open", "closed"] | None = None,
) -> Response:
    ids = [i for i in (service_request_id or "").split(",") if i] or None
    async with uow:
        rows = await repository.search(
            uow.session, ids=ids, subject_classes=service_code.split(",") if service_code else None,
            start=start_date, end=end_date, limit=1000,
            statuses=PUBLISHED_STATUSES, publishing=ctx.settings.open311_publishing,
        )
    views = [_request_view(r) for r in rows]
    if status:
        views = [v for v in views if v["status"] == status]
    return _render(views, fmt, "service_requests", "request")


async def _one(uow: UnitOfWork, case_id: str, fmt: Format, missing: str, view, shown) -> Response:  # noqa: ANN001
    """One request by id, rendered by ``view``; the spec's 404 when there is none or it is
    not ``shown`` (the same answer: the feed does not tell which)."""
    async with uow:
        row = await repository.get_appeal(uow.session, case_id)
    if row is None or not shown(row):
        return error_response(404, f"{missing} not found", fmt)
    return _render([view(row)], fmt, "service_requests", "request")


@router.get("/requests/{request_id}.{fmt}", summary="One published service request (others: the spec's 404)")
async def get_request(request_id: str, fmt: Format, uow: UowDep, ctx: ContextDep) -> Response:
    publishing = ctx.settings.open311_publishing
    return await _one(
        uow, request_id, fmt, f"service_request_id {request_id}", _request_view, lambda row: is_published(row, publishing)
    )


@router.get("/tokens/{token}.{fmt}", summary="Token → service request id")
async def token(token: str, fmt: Format, uow: UowDep) -> Response:
    # Requests are created synchronously, so the token is the request id itself: the answer
    # tells the client that filed it only what it already holds, whether published or not.
    return await _one(
        uow, token, fmt, f"token {token}", lambda row: {"service_request_id": row.case_id, "token": token}, lambda row: True
    )


def install_open311_errors(app: Any) -> None:
    """Validation errors on Open311 routes answer in the spec's error format, not problem+json."""
    from fastapi.exceptions import RequestValidationError

    previous = app.exception_handlers.get(RequestValidationError)

    async def handler(request: Request, exc: RequestValidationError) -> Response:
        path = request.url.path
        if not path.startswith("/open311/"):
            return await previous(request, exc)
        fmt: Format = "xml" if path.endswith(".xml") else "json"
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in exc.errors())
        return error_response(400, f"invalid parameters: {fields}", fmt)

    app.add_exception_handler(RequestValidationError, handler)
