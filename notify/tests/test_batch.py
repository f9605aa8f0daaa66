"""Notify's handler (``notify.batch``) over the same stories, however they are cut into batches.

Against a running notify (real PostgreSQL): the same stories — a citizen's appeal accepted
and dispatched, a 12345 ticket, an order to a second unit and a redo round, a case closed
(in the middle of a batch), an appeal rejected, an event of a case notify has never heard
of — once in three interleaved batches and once in batches of one, each in its own
transaction (how the consumer applies a failed batch again). Recipients, messages (their
texts decrypted) and case_status must be the same, and show each rule.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from notify.app import create_app
from notify.batch import make_batch_handler, with_round, with_unit
from notify.models import messages, recipients
from notify.service import BODY_CONTEXT
from notify.settings import NotifySettings
from notify.tests.helpers import Case, local
from shared.db import case_status
from shared.events import (
    CaseRejected, CaseTriaged, FiveMatters, RejectedData, TriagedData, Urgency, make_event, system_actor,
)  # fmt: skip
from shared.testing import Infra, running, service_settings, unique

# Ids and times (of the events, of writing) differ; sealed values differ by their random nonces.
SKIP = ("updated_at", "id", "event_id", "created_at", "next_attempt_at", "sent_at", "delivered_at", "body_enc", "phone_enc", "last_event_at")


@pytest.fixture(scope="module")
async def notify(infra: Infra):
    # Every closed case gets a questionnaire: its sampling goes by case id, and the two runs' ids differ.
    settings = service_settings(
        NotifySettings, infra, topic=unique("lifecycle"), database=unique("notify"), questionnaire_every=1
    )
    async with running(create_app(settings), settings) as service:
        # What is compared is what the handlers wrote: the sender would deliver (or hold, in
        # quiet hours) one run's messages before the other's are written, whenever it polls.
        await service.runtime.context.sender.stop()
        yield service


def stories() -> tuple[list[Case], list]:
    app, hotline, redo, closing, rejected = Case(), Case(channel="hotline"), Case(), Case(), Case()
    stray = Case()
    refused = make_event(CaseRejected, case_id=rejected.id, producer="intake", actor=system_actor("intake"),
                         payload=RejectedData(reason_code="not_an_appeal", reason="不属于诉求"))  # fmt: skip
    # A triage that names no place: the township received gave stays (None never overwrites).
    unplaced = make_event(CaseTriaged, case_id=app.id, producer="intake", actor=system_actor("intake"), payload=TriagedData(
        category=FiveMatters.annoyance, subject_class="infrastructure", urgency=Urgency.urgent, confidence=0.9))  # fmt: skip
    groups = [
        [app.received(), app.accepted(), unplaced, app.dispatched()],
        [hotline.received(), hotline.accepted(), hotline.dispatched()],
        [redo.received(), redo.accepted(), redo.dispatched(), redo.dispatched(0), redo.reopened(1), redo.dispatched(1)],
        [closing.received(), closing.accepted(), closing.dispatched(), closing.closed(local(2026, 9, 30, 10))],
        [rejected.received(), refused],
        [stray.dispatched()],  # its received never came
    ]
    events, longest = [], max(len(g) for g in groups)
    for i in range(longest):
        events += [g[i] for g in groups if i < len(g)]
    return [app, hotline, redo, closing, rejected, stray], events


async def rows_of(service, cases: list[Case]) -> dict:
    """Recipients, messages and case_status of these cases; each case's own ids, numbers,
    citizen reference and one-time tokens replaced by placeholders, texts decrypted."""
    keys = service.app.state.context.keys
    async with service.runtime.engine.connect() as conn:
        refs = dict((await conn.execute(select(recipients.c.case_id, recipients.c.citizen_ref))).all())
        marks = {}
        for n, case in enumerate(cases):
            marks |= {case.id: f"<case{n}>", case.id[-6:]: f"<n{n}>"}
            if refs.get(case.id):
                marks[refs[case.id]] = f"<ref{n}>"

        def plain(value):
            if not isinstance(value, str):
                return value
            for mark, placeholder in marks.items():
                value = value.replace(mark, placeholder)
            return re.sub(r"token=[A-Za-z0-9_-]+", "token=<token>", value)

        def clean(row) -> dict:
            return {k: plain(v) for k, v in row.items() if k not in SKIP}

        ids = [case.id for case in cases]
        got: dict = {}
        for name, table, key in (("recipients", recipients, recipients.c.case_id), ("status", case_status, case_status.c.case_id)):
            found = (await conn.execute(select(table).where(key.in_(ids)))).mappings().all()
            got[name] = sorted((clean(r) for r in found), key=lambda r: r["case_id"])
        found = (await conn.execute(select(messages).where(messages.c.case_id.in_(ids)).order_by(messages.c.id))).mappings()
        got["messages"] = sorted(
            ({**clean(r), "text": plain(keys.decrypt(r["body_enc"], context=BODY_CONTEXT)), "payload": None} for r in found),
            key=lambda r: (r["case_id"], r["event_type"], r["recipient"], r["channel"], r["text"]),
        )  # fmt: skip
    return got


async def test_the_stories_give_the_same_rows_in_three_batches_as_in_batches_of_one(notify):
    apply_batch = make_batch_handler(notify.app.state.context)

    batched_cases, events = stories()
    for part in (events[:7], events[7:15], events[15:]):
        async with notify.runtime.uow() as uow:
            await apply_batch(uow, part)
            await uow.commit()
    single_cases, events = stories()
    for event in events:
        async with notify.runtime.uow() as uow:
            await apply_batch(uow, [event])
            await uow.commit()

    singly = await rows_of(notify, single_cases)
    batched = await rows_of(notify, batched_cases)
    assert batched == singly
    # The stories reach each rule, so the comparison covers them.
    by_case = {r["case_id"]: r for r in singly["recipients"]}
    assert (by_case["<case0>"]["township"], by_case["<case0>"]["urgency"]) == ("LB-WX-TW", "urgent")
    assert by_case["<case2>"]["round"] == 1 and by_case["<case2>"]["units"] == ["LB-WX-ZJJ"]
    assert by_case["<case5>"]["units"] == ["LB-WX-ZJJ"] and by_case["<case5>"]["channel"] is None
    kinds = {(m["case_id"], m["event_type"], m["channel"]) for m in singly["messages"]}
    assert {("<case0>", "case.accepted", "sms"), ("<case1>", "case.accepted", "hotline"), ("<case3>", "case.closed", "sms"),
            ("<case4>", "case.rejected", "sms")} <= kinds  # fmt: skip
    assert all("survey?case=" in m["text"] for m in singly["messages"] if m["event_type"] == "case.closed")


def test_with_unit_follows_the_rounds():
    row = {"round": 0, "units": [], "unit_names": {}}
    with_unit(row, 0, "A", "甲")
    with_unit(row, 0, "A", None)  # the same unit again: listed once, its name kept as given last
    with_unit(row, 0, "B", None)
    assert row == {"round": 0, "units": ["A", "B"], "unit_names": {"A": "A", "B": "B"}}
    with_unit(row, 1, "C", "丙")  # a redo round starts the list afresh
    with_unit(row, 0, "D", "丁")  # a late order of round 0 changes no list
    assert row == {"round": 1, "units": ["C"], "unit_names": {"A": "A", "B": "B", "C": "丙", "D": "丁"}}
    with_round(row, 2)  # 重办: a new round, no unit yet
    with_round(row, 1)  # a late reopening of an earlier round changes nothing
    assert (row["round"], row["units"]) == (2, [])
