"""Test helpers: a case's events as intake and dispatch would write them, and read-backs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from shared.actors import actor_headers
from shared.contact import contact_keyring, seal_phone
from shared.events import (
    AcceptedData,
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseReceived,
    CaseReopened,
    ClosedData,
    DispatchedData,
    EventBase,
    Location,
    ReceivedData,
    ReopenedData,
    make_event,
    system_actor,
)
from shared.privacy import mask_phone
from shared.testing import inbox_owner, OPS, AUDITOR, eventually, publish, unique
from shared.workdays import LOCAL

OPERATOR = actor_headers("op-1", "centre_dispatcher", "LB-WX-ZZZX")  # 武宣县: the demo cases are 通挽镇's
UNIT = "LB-WX-ZJJ"  # 武宣县住建局: the demo cases are 通挽镇's
SEALER = contact_keyring(None)  # the development contact ring intake seals with when CONTACT_KEYS is unset


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL)


class Case:
    """One case's events, as intake and dispatch would write them."""

    def __init__(self, *, channel: str = "app", phone: str = "13800001111", township: str = "LB-WX-TW") -> None:
        self.id = unique("case")
        self.tracking_no = f"XC-20260930-{self.id[-6:]}"
        self.channel = channel
        self.phone = phone
        self.township = township
        self.ticket = f"T12345-{self.id[-6:]}" if channel == "hotline" else None

    def _make(self, cls: type[EventBase], payload: Any, producer: str, at: datetime | None = None) -> EventBase:
        return make_event(cls, case_id=self.id, payload=payload, producer=producer, actor=system_actor(producer),
                          occurred_at=at)  # fmt: skip

    def received(self) -> EventBase:
        return self._make(CaseReceived, ReceivedData(
            tracking_no=self.tracking_no, channel=self.channel, title="村口路灯不亮", description="路灯坏了",
            location=Location(township=self.township, street="城东路"), contact_masked=mask_phone(self.phone),
            citizen_ref=unique("ref"), contact_sealed=seal_phone(SEALER, self.phone), external_ref=self.ticket,
        ), "intake")  # fmt: skip

    def accepted(self) -> EventBase:
        return self._make(CaseAccepted, AcceptedData(tracking_no=self.tracking_no, notice="已受理"), "intake")

    def dispatched(self, round_: int = 0) -> EventBase:
        return self._make(CaseDispatched, DispatchedData(order_no=f"JB-{self.id[-6:]}-{round_}", unit=UNIT,
                                                         unit_name="住建局", redo_round=round_), "dispatch")  # fmt: skip

    def closed(self, at: datetime) -> EventBase:
        return self._make(CaseClosed, ClosedData(public_summary="路灯已修复"), "dispatch", at)

    def reopened(self, round_: int) -> EventBase:
        return self._make(CaseReopened, ReopenedData(reason="不满意", redo_round=round_, unit=UNIT), "dispatch")


async def set_clock(notify, moment: datetime) -> None:
    response = await notify.client.post("/api/v1/admin/clock", json={"now": moment.isoformat()}, headers=OPS)
    assert response.status_code == 200, response.text


async def callbacks_of(notify, case: Case) -> list[dict]:
    response = await notify.client.get(f"/api/v1/cases/{case.id}/callbacks", headers=AUDITOR)
    if response.status_code == 404:  # no event of the case has reached notify yet
        return []
    assert response.status_code == 200, response.text
    return response.json()


async def closed_case(notify, infra, receiver, closed_at: datetime, **kw: Any) -> tuple[Case, dict]:
    """A case taken to closure; returns it and its callback task once notify has scheduled it."""
    case = Case(**kw)
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic,
                  case.received(), case.accepted(), case.dispatched(), case.closed(closed_at))  # fmt: skip
    [task] = await eventually(lambda: callbacks_of(notify, case), what="callback task")
    return case, task


async def rating_token(receiver, case: Case, purpose: str = "token") -> str:
    """The one-time token from the closing SMS the citizen received."""

    async def sms() -> list[dict]:
        return [m for m in await receiver.messages(path="/sms", contains=case.tracking_no) if "销号" in m["json"]["text"]]

    [message] = await eventually(sms, what="closing SMS")
    assert message["json"]["to"] == case.phone
    if purpose == "questionnaire":
        return re.search(r"survey\?case=[^&]+&token=([A-Za-z0-9_-]+)", message["json"]["text"]).group(1)
    return re.search(r"rate\?case=[^&]+&round=\d+&token=([A-Za-z0-9_-]+)", message["json"]["text"]).group(1)


async def events_of(topic, case: Case, event_type: str, count: int = 1) -> list[EventBase]:
    async def seen() -> list[EventBase]:
        found = await topic.events(case_id=case.id, types=event_type)
        return found if len(found) >= count else []

    return await eventually(seen, what=f"{event_type} for {case.id}")


async def message_states(notify, case: Case) -> list[dict]:
    response = await notify.client.get(f"/api/v1/cases/{case.id}/messages", headers=AUDITOR)
    if response.status_code == 404:  # no event of the case has reached notify yet
        return []
    assert response.status_code == 200, response.text
    return response.json()


async def inbox_of(notify, case: Case) -> list[dict]:
    states = await message_states(notify, case)
    [recipient] = {m["recipient"] for m in states if m["channel"] == "inbox"} or {None}
    if recipient is None:
        return []
    return (await notify.client.get(f"/api/v1/inbox/{recipient}", headers=inbox_owner(recipient))).json()["items"]


async def ids_of(notify, case: Case) -> set[int]:
    return {m["id"] for m in await message_states(notify, case)}


async def for_case(items_coro, case: Case) -> list[dict]:  # noqa: ANN001
    return [m for m in await items_coro if m["case_id"] == case.id]


async def has_count(items_coro, n: int) -> bool:  # noqa: ANN001
    return len(await items_coro) == n
