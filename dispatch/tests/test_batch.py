"""Dispatch's handler (``dispatch.batch``) over the same stories, however they are cut into batches.

Against a running dispatch (real PostgreSQL): the same stories — cases the catalogue
dispatches, a rejected appeal, a duplicate that follows its main case, a matter solved on
the spot, an appeal left for the dispatcher, a case triaged twice, ratings in between —
once in three interleaved batches and once in batches of one, each in its own transaction
(how the consumer applies a failed batch again). Cases, orders, case_status and the
``case.dispatched`` events written must be the same, and show each decision.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from dispatch.app import create_app
from dispatch.batch import make_batch_handler
from dispatch.models import cases, orders
from dispatch.settings import DispatchSettings
from dispatch.tests.helpers import GUARDRAIL, STREETLAMP, intake_events
from shared.db import case_status, outbox, processed_events
from shared.events import CaseRated, CaseRejected, RatedData, RejectedData, Satisfaction, make_event, system_actor
from shared.testing import Infra, eventually, running, service_settings, unique

NOTIFY = system_actor("notify")
# Ids, numbers and times of writing differ between the two runs.
SKIP = ("updated_at", "order_no", "dispatched_at", "due_at", "return_due_at", "survey_due_at", "history", "tracking_no", "last_event_at", "received_at")


@pytest.fixture(scope="module")
async def dispatch(infra: Infra):
    settings = service_settings(DispatchSettings, infra, topic=unique("lifecycle"), database=unique("dispatch"), org_topic=unique("org"))
    async with running(create_app(settings), settings) as service:
        yield service


def stories(tag: str) -> list[list]:
    """Each story's events in order; the case ids carry ``tag`` so two runs can be told apart."""
    def case(name: str) -> str:
        return f"{tag}-{name}"

    rejected = intake_events(STREETLAMP, case_id=case("rejected"), triage=False)
    rejected.append(make_event(CaseRejected, case_id=case("rejected"), producer="intake", actor=rejected[0].actor,
                               payload=RejectedData(reason_code="not_an_appeal", reason="不属于诉求")))  # fmt: skip
    twice = intake_events(GUARDRAIL, case_id=case("twice"))
    twice.append(intake_events(GUARDRAIL, case_id=case("twice"))[2])  # 人工分拨 again after the dispatch
    rating = make_event(CaseRated, case_id=case("lamp"), producer="notify", actor=NOTIFY,
                        payload=RatedData(rating=Satisfaction.satisfied, round=0, source="callback"))  # fmt: skip
    return [
        intake_events(STREETLAMP, case_id=case("lamp")) + [rating],
        intake_events(STREETLAMP, case_id=case("duplicate"), merged_into=case("lamp")),
        rejected,
        intake_events(STREETLAMP, case_id=case("on-spot"), triage=False, solved_on_spot=True),
        intake_events(STREETLAMP, case_id=case("untriaged"), triage=False),
        twice,
    ]


def interleaved(groups: list[list]) -> list:
    """Round-robin over the stories, as cases interleave on a partition."""
    out, longest = [], max(len(g) for g in groups)
    for i in range(longest):
        out += [g[i] for g in groups if i < len(g)]
    return out


async def rows_of(service, tag: str) -> dict:
    async with service.runtime.engine.connect() as conn:
        got = {}
        for name, table, key in (("cases", cases, cases.c.case_id), ("orders", orders, orders.c.case_id),
                                 ("status", case_status, case_status.c.case_id)):  # fmt: skip
            query = select(table).where(key.like(f"{tag}-%")).order_by(key)
            got[name] = [
                {k: (v.replace(tag, "<tag>") if isinstance(v, str) else v) for k, v in r.items() if k not in SKIP}
                for r in (await conn.execute(query)).mappings().all()
            ]
        written = select(outbox.c.key, outbox.c.event_type).where(outbox.c.key.like(f"{tag}-%")).order_by(outbox.c.key)
        got["events"] = [(key.replace(tag, "<tag>"), kind) for key, kind in (await conn.execute(written)).all()]
    return got


async def settled(service) -> None:
    """Until the service's own events have come back from the topic and been applied."""
    async def check():
        async with service.runtime.engine.connect() as conn:
            sent = set((await conn.execute(select(outbox.c.event_id))).scalars())
            seen = set((await conn.execute(select(processed_events.c.event_id))).scalars())
        return sent <= seen

    await eventually(check, what="dispatch's own events applied")


async def test_the_stories_give_the_same_rows_in_three_batches_as_in_batches_of_one(dispatch):
    apply_batch = make_batch_handler(dispatch.app.state.context)
    batched, single = f"b{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:8]}"

    events = interleaved(stories(batched))
    for part in (events[:5], events[5:13], events[13:]):
        async with dispatch.runtime.uow() as uow:
            await apply_batch(uow, part)
            await uow.commit()
    for event in interleaved(stories(single)):
        async with dispatch.runtime.uow() as uow:
            await apply_batch(uow, [event])
            await uow.commit()
    await settled(dispatch)

    singly = await rows_of(dispatch, single)
    assert await rows_of(dispatch, batched) == singly
    # The stories reach each decision, so the comparison covers them: two orders by the
    # catalogue (the streetlamp to 住建局, the guardrail to 通挽镇 once although triaged twice), none
    # for the rejected, merged, solved-on-the-spot and untriaged appeals.
    assert [(o["case_id"], o["unit"]) for o in singly["orders"]] == [("<tag>-lamp", "LB-XC-ZJJ"), ("<tag>-twice", "LB-WX-TW-JL")]  # 江龙村 holds its case first
    assert singly["events"] == [("<tag>-lamp", "case.dispatched"), ("<tag>-twice", "case.dispatched")]
    stages = {c["case_id"]: (c["stage"], c["rejected"], c["merged_into"], c["solved_on_spot"]) for c in singly["cases"]}
    assert stages == {
        "<tag>-lamp": ("dispatched", False, None, False), "<tag>-twice": ("dispatched", False, None, False),
        "<tag>-duplicate": ("received", False, "<tag>-lamp", False), "<tag>-rejected": ("received", True, None, False),
        "<tag>-on-spot": ("received", False, None, True), "<tag>-untriaged": ("received", False, None, False),
    }  # fmt: skip
    statuses = {s["case_id"]: s["events_applied"] for s in singly["status"]}
    assert statuses["<tag>-lamp"] == 5 and statuses["<tag>-twice"] == 5  # 3 or 4 of intake's, the rating, the order


async def test_an_order_already_there_opens_nothing_and_leaves_the_case_as_it_was(dispatch):
    """The catalogue's owner already has an order of this round (a returned one, say) while
    the case still reads "received": triage opens no second order and emits nothing."""
    ctx = dispatch.app.state.context
    apply_batch = make_batch_handler(ctx)
    received, accepted, triaged = intake_events(STREETLAMP, case_id=f"x{uuid.uuid4().hex[:8]}")
    async with dispatch.runtime.uow() as uow:
        await apply_batch(uow, [received, accepted])
        # An order of this round already with 住建局 while the case still reads "received".
        await uow.session.execute(orders.insert().values(
            order_no=f"JB-T-{uuid.uuid4().hex[:8]}", case_id=received.case_id, unit="LB-XC-ZJJ", role="sole",
            state="returned", resolution_class="general", dispatched_at=received.occurred_at,
        ))  # fmt: skip
        await uow.commit()
    async with dispatch.runtime.uow() as uow:
        await apply_batch(uow, [triaged])
        assert uow.pending == []  # no case.dispatched
        await uow.commit()
    async with dispatch.runtime.engine.connect() as conn:
        stage = (await conn.execute(select(cases.c.stage).where(cases.c.case_id == received.case_id))).scalar_one()
        count = len((await conn.execute(select(orders.c.order_no).where(orders.c.case_id == received.case_id))).all())
    assert (stage, count) == ("received", 1)
