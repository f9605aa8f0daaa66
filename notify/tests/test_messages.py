"""Messages on every channel against real PostgreSQL, the broker and the development receiver on a real port."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from notify import repository
from notify.models import messages
from notify.tests.conftest import WEBHOOK_SECRET
from notify.tests.helpers import (
    OPERATOR, UNIT, Case, for_case, has_count, ids_of, inbox_of, local, message_states, set_clock,
)  # fmt: skip
from shared.events import ClockKind, CountyCalled, CountyCalledData, SlaBreached, SlaBreachedData, make_event, system_actor
from shared.signing import SignedRequest, verify
from shared.signing import signature_headers
from shared.testing import inbox_owner, OPS, AUDITOR, eventually, generic_plan, publish
from shared.workdays import LOCAL


async def test_quiet_hours_hold_an_sms_until_seven(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 11, 23, 23, 0))
    case = Case()
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, case.received(), case.accepted())

    async def held() -> list[dict]:
        return [m for m in await message_states(notify, case) if m["channel"] == "sms" and m["state"] == "held"]

    [sms] = await eventually(held, what="SMS held for the night")
    assert datetime.fromisoformat(sms["next_attempt_at"]) == local(2026, 11, 24, 7, 0)
    # The in-app message is not held: only SMS waits for the morning.
    inbox = await eventually(lambda: inbox_of(notify, case), what="the in-app message")
    assert inbox and "已受理" in inbox[0]["text"]
    assert await receiver.messages(path="/sms", contains=case.tracking_no) == []

    await set_clock(notify, local(2026, 11, 24, 7, 0, 1))
    [delivered] = await eventually(lambda: receiver.messages(path="/sms", contains=case.tracking_no), what="SMS at 07:00")
    assert delivered["json"]["to"] == case.phone and case.tracking_no in delivered["json"]["text"]

    async def recorded() -> list[dict]:
        return [m for m in await message_states(notify, case) if m["channel"] == "sms" and m["state"] == "sent"]

    [after] = await eventually(recorded, what="SMS recorded as sent")
    assert after["text"] is None  # the citizen's text is not shown to operators


async def test_hotline_webhook_signed_retried_and_delivered_once(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 11, 24, 10))
    await receiver.fail_next(2, "/hotline")
    case = Case(channel="hotline")
    accepted = case.accepted()
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, case.received(), accepted)

    async def delivered() -> list[dict]:
        return await receiver.messages(path="/hotline", header=f"idempotency-key={accepted.id}")

    [hook] = await eventually(delivered, what="webhook delivered")
    tries = await receiver.messages(path="/hotline", header=f"idempotency-key={accepted.id}", include_failed=True)
    assert [t["status"] for t in tries] == [503, 503, 200]
    body = hook["json"]
    assert (body["event_id"], body["ticket_no"], body["status"], body["case_id"]) == (str(accepted.id), case.ticket, "accepted", case.id)
    assert case.phone not in hook["body"]

    headers = hook["headers"]
    assert headers["x-event-id"] == str(accepted.id) and headers["x-client-id"] == "jiesu-notify"
    request = SignedRequest(client_id=headers["x-client-id"], timestamp=headers["x-timestamp"], nonce=headers["x-nonce"],
                            signature=headers["x-signature"], method="POST", path=hook["target"], body=hook["body"].encode())  # fmt: skip
    now = datetime.now().timestamp()
    assert verify(request, {"jiesu-notify": WEBHOOK_SECRET.encode()}, now=now) == "jiesu-notify"
    forged = SignedRequest(**{**request.__dict__, "body": request.body.replace(b"accepted", b"rejected")})
    try:
        verify(forged, {"jiesu-notify": WEBHOOK_SECRET.encode()}, now=now)
        raise AssertionError("a changed body must not verify")
    except Exception as exc:  # noqa: BLE001
        assert "bad signature" in str(exc)

    async def sent_status() -> list[dict]:
        return [m for m in await message_states(notify, case) if m["channel"] == "hotline" and m["state"] == "delivered"]

    [status] = await eventually(sent_status, what="delivery recorded")
    assert status["attempts"] == 3 and [t["outcome"] for t in status["tries"]] == ["failed", "failed", "delivered"]
    assert [t["status_code"] for t in status["tries"]] == [503, 503, 200]


async def test_dead_lettered_webhook_is_resent_by_an_operator(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 11, 24, 10))
    await receiver.fail_next(100, "/hotline")
    case = Case(channel="hotline")
    accepted = case.accepted()
    try:
        await publish(infra.bootstrap_servers, notify.settings.kafka_topic, case.received(), accepted)

        async def dead() -> list[dict]:
            page = (await notify.client.get("/api/v1/admin/webhooks", params={"state": "dead", "limit": 500}, headers=AUDITOR)).json()
            return [m for m in page["items"] if m["event_type"] == "case.accepted" and m["id"] in await ids_of(notify, case)]

        [parked] = await eventually(dead, what="dead-lettered webhook")
        assert parked["attempts"] == notify.settings.max_attempts
    finally:
        await receiver.fail_next(0, "/hotline")
    not_dead = await notify.client.post(f"/api/v1/admin/webhooks/{parked['id'] + 10_000_000}/resend", headers=OPERATOR)
    assert not_dead.status_code == 404
    resent = await notify.client.post(f"/api/v1/admin/webhooks/{parked['id']}/resend", headers=OPERATOR)
    assert resent.status_code == 202, resent.text
    [hook] = await eventually(lambda: receiver.messages(path="/hotline", header=f"idempotency-key={accepted.id}"))
    assert hook["json"]["status"] == "accepted"
    again = await notify.client.post(f"/api/v1/admin/webhooks/{parked['id']}/resend", headers=OPERATOR)
    assert again.status_code == 409 and again.json()["state"] in ("queued", "sending", "delivered")


async def test_an_event_delivered_twice_sends_one_message(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 11, 24, 10))
    case = Case()
    accepted = case.accepted()
    topic_name = notify.settings.kafka_topic
    await publish(infra.bootstrap_servers, topic_name, case.received(), accepted)
    await publish(infra.bootstrap_servers, topic_name, accepted)  # the broker delivers it again
    # A later event on the same partition: once its SMS is out, the duplicate has been handled.
    await publish(infra.bootstrap_servers, topic_name, case.dispatched())

    async def dispatched_sms() -> list[dict]:
        return [m for m in await receiver.messages(path="/sms", contains=case.tracking_no) if "交由" in m["json"]["text"]]

    await eventually(dispatched_sms, what="the dispatch SMS")

    async def all_settled() -> bool:
        return all(m["state"] in ("sent", "delivered") for m in await message_states(notify, case))

    await eventually(all_settled, what="every message out")
    accepted_sms = [m for m in await receiver.messages(path="/sms", contains=case.tracking_no) if "已受理" in m["json"]["text"]]
    assert len(accepted_sms) == 1
    kinds = [(m["kind"], m["channel"]) for m in await message_states(notify, case)]
    assert kinds.count(("citizen.accepted", "sms")) == 1
    status = (await notify.client.get(f"/api/v1/cases/{case.id}/status", headers=AUDITOR)).json()
    assert status["events_applied"] == 3  # received, accepted once, dispatched


async def test_units_hear_of_orders_calls_and_red_cards_with_personal_data_masked(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 11, 24, 10))
    case = Case()
    called = make_event(CountyCalled, case_id=case.id, producer="dispatch", actor=system_actor("dispatch"),
                        payload=CountyCalledData(call_id="call-1", township="通挽镇", units=["LB-WX-SLJ"],
                                                 reason="村民13912345678反映停水三天"))  # fmt: skip
    breached = make_event(SlaBreached, case_id=case.id, producer="sla", actor=system_actor("sla"),
                          payload=SlaBreachedData(clock_id="k1", clock=ClockKind.resolve, unit=None,
                                                  due_at=local(2026, 11, 23, 18)))  # fmt: skip
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic,
                  case.received(), case.accepted(), case.dispatched(), called, breached)  # fmt: skip

    async def inbox(recipient: str, **params: Any) -> list[dict]:
        return (await notify.client.get(f"/api/v1/inbox/{recipient}", params=params, headers=inbox_owner(recipient))).json()["items"]

    async def duty_has_red() -> list[dict]:
        items = [m for m in await inbox(f"unit:{UNIT}:duty") if m["case_id"] == case.id]
        return items if {m["kind"] for m in items} >= {"unit.dispatched", "unit.red_card"} else []

    duty = await eventually(duty_has_red, what="order and red card in the duty inbox")
    assert any("新交办单" in m["text"] for m in duty)
    head = await eventually(lambda: for_case(inbox(f"unit:{UNIT}:head"), case), what="red card to the head")
    assert [m["kind"] for m in head] == ["unit.red_card"] and "红牌" in head[0]["text"]
    [call] = await eventually(lambda: for_case(inbox("unit:LB-WX-SLJ:duty"), case))
    assert "乡呼县应" in call["text"] and "139****5678" in call["text"] and "13912345678" not in call["text"]
    read = await notify.client.post(f"/api/v1/inbox/unit:LB-WX-SLJ:duty/{call['id']}/read", headers=inbox_owner("unit:LB-WX-SLJ:duty"))
    assert read.status_code == 200
    unread = await inbox("unit:LB-WX-SLJ:duty", unread="true")
    assert call["id"] not in {m["id"] for m in unread}


async def test_the_clock_moves_and_resets_over_the_api(notify) -> None:
    await set_clock(notify, local(2030, 1, 2, 3, 4))
    clock = (await notify.client.get("/api/v1/admin/clock", headers=AUDITOR)).json()
    assert clock["movable"] is True
    assert abs(datetime.fromisoformat(clock["now"]) - local(2030, 1, 2, 3, 4)) < timedelta(seconds=5)
    reset = await notify.client.post("/api/v1/admin/clock", json={"now": None}, headers=OPS)
    assert reset.status_code == 200
    assert abs(datetime.fromisoformat(reset.json()["now"]) - datetime.now(LOCAL)) < timedelta(seconds=5)
    naive = await notify.client.post("/api/v1/admin/clock", json={"now": "2030-01-02T03:04:00"}, headers=OPS)
    assert naive.status_code == 422


async def test_wechat_citizens_get_a_subscribe_message_and_receipts_mark_delivery(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 11, 24, 11))
    case = Case(channel="wechat")
    received = case.received()
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, received, case.accepted())
    [wechat] = await eventually(lambda: receiver.messages(path="/wechat", contains=case.tracking_no), what="WeChat message")
    assert wechat["json"]["touser"] == f"citizen:{received.payload.citizen_ref}"
    assert wechat["json"]["template"] == "citizen.accepted" and case.phone not in wechat["body"]

    async def sms_sent() -> list[dict]:
        return [m for m in await message_states(notify, case) if m["channel"] == "sms" and m["state"] == "sent"]

    [sms] = await eventually(sms_sent, what="SMS sent")
    path, body = f"/api/v1/messages/{sms['id']}/receipt", b'{"status": "delivered"}'
    unsigned = await notify.client.post(path, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401  # anyone could otherwise mark any message delivered
    signed = signature_headers("sms-gateway", b"dev-sms-gateway-secret", method="POST", path=path, body=body)
    receipt = await notify.client.post(path, content=body, headers={**signed, "content-type": "application/json"})
    assert receipt.status_code == 200, receipt.text
    replayed = await notify.client.post(path, content=body, headers={**signed, "content-type": "application/json"})
    assert replayed.status_code == 401
    [after] = [m for m in await message_states(notify, case) if m["id"] == sms["id"]]
    assert after["state"] == "delivered" and after["delivered_at"]


async def test_a_citizen_gets_at_most_n_sms_an_hour_the_rest_wait(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 11, 25, 10))
    case = Case()
    orders = [case.dispatched() for _ in range(5)]  # with accepted: 6 SMS for one citizen, the limit is 5 an hour
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, case.received(), case.accepted(), *orders)

    async def settled() -> list[dict]:
        sms = [m for m in await message_states(notify, case) if m["channel"] == "sms"]
        return sms if len(sms) == 6 and all(m["state"] in ("sent", "queued") for m in sms) and \
            sum(m["state"] == "sent" for m in sms) == 5 else []  # fmt: skip

    sms = await eventually(settled, what="five SMS out, one waiting")
    [waiting] = [m for m in sms if m["state"] == "queued"]
    assert waiting["last_error"] == "rate limited"
    first_sent = min(datetime.fromisoformat(m["sent_at"]) for m in sms if m["state"] == "sent")
    assert datetime.fromisoformat(waiting["next_attempt_at"]) == first_sent + timedelta(hours=1)
    assert len(await receiver.messages(path="/sms", contains=case.tracking_no)) == 5

    await set_clock(notify, local(2026, 11, 25, 11, 1))
    await eventually(lambda: has_count(receiver.messages(path="/sms", contains=case.tracking_no), 6), what="the sixth SMS an hour later")


async def test_the_senders_claim_reads_the_due_index_as_a_prepared_statement(notify) -> None:
    # A day's worth of finished messages: the claim must go straight to the few due ones.
    long_ago = local(2026, 1, 5, 9, 0)
    rows = [
        {"event_id": uuid.uuid4(), "event_type": "case.accepted", "case_id": f"plan-{i}", "recipient": "citizen:plan-test",
         "channel": "inbox", "kind": "citizen.accepted", "body_enc": "-", "state": "delivered", "next_attempt_at": long_ago}
        for i in range(3000)
    ]  # fmt: skip
    async with notify.runtime.uow() as uow:
        await uow.session.execute(insert(messages), rows)
        await uow.commit()
    async with notify.runtime.engine.connect() as conn:
        await conn.execute(text("ANALYZE messages"))
        await conn.commit()
        driver = (await conn.get_raw_connection()).driver_connection
        plan = await generic_plan(driver, repository.claim_statement(long_ago, 50))
    assert "messages_due" in plan and "Seq Scan on messages" not in plan, plan
