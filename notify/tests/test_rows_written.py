"""What notify writes per message (#21 item 8): an in-app inbox message is queued as
delivered, in the handler's own transaction — the sender neither claims it, nor records an
outcome, nor logs a try for it (``domain.delivered_when_queued``)."""

from __future__ import annotations

from sqlalchemy import text

from notify.app import create_app
from notify.settings import NotifySettings
from notify.tests.helpers import UNIT, Case, local, message_states, set_clock
from shared.tasks import stop_task
from shared.testing import Infra, eventually, inbox_owner, publish, running, service_settings, unique


async def test_an_inbox_message_is_delivered_when_queued_without_the_sender(infra: Infra) -> None:
    settings = service_settings(
        NotifySettings, infra, topic=unique("lifecycle"), database=unique("notify"), test_clock=True,
    )  # fmt: skip
    async with running(create_app(settings), settings) as notify:
        await set_clock(notify, local(2026, 11, 24, 10))
        # No sender at all: what reaches the inbox now was delivered by the handler's commit.
        await stop_task(notify.runtime.context.sender._task)
        case = Case(channel="app")
        await publish(infra.bootstrap_servers, settings.kafka_topic, case.received(), case.accepted(), case.dispatched())
        duty = f"unit:{UNIT}:duty"

        async def in_duty_inbox() -> list[dict]:
            response = await notify.client.get(f"/api/v1/inbox/{duty}", headers=inbox_owner(duty))
            return [m for m in response.json()["items"] if m["case_id"] == case.id]

        [order] = await eventually(in_duty_inbox, what="the order in the unit's inbox, with no sender running")
        assert order["kind"] == "unit.dispatched"
        states = await message_states(notify, case)
        inbox = [m for m in states if m["channel"] == "inbox"]
        assert {m["kind"] for m in inbox} == {"citizen.accepted", "citizen.dispatched", "unit.dispatched"}
        # Delivered once, with no try logged: nothing left the service.
        assert all(m["state"] == "delivered" and m["attempts"] == 1 and m["tries"] == [] for m in inbox), inbox
        assert all(m["delivered_at"] is not None for m in inbox), inbox
        # The SMS still waits for the sender: it is queued, not sent by the handler.
        assert {m["state"] for m in states if m["channel"] == "sms"} == {"queued"}
        async with notify.runtime.engine.connect() as conn:
            attempts = (await conn.execute(text("SELECT count(*) FROM message_attempts"))).scalar()
        assert attempts == 0


async def test_an_sms_held_for_quiet_hours_is_written_once_not_leased_first(infra: Infra) -> None:
    settings = service_settings(
        NotifySettings, infra, topic=unique("lifecycle"), database=unique("notify"), test_clock=True,
        sms_url="http://127.0.0.1:9/sms",  # never reached: quiet hours hold the SMS before any send
    )  # fmt: skip
    async with running(create_app(settings), settings) as notify:
        # Every change of a message row, as PostgreSQL makes it.
        async with notify.runtime.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE message_writes (message_id bigint, state text)"))
            await conn.execute(text("""
                CREATE FUNCTION log_message_write() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO message_writes VALUES (NEW.id, NEW.state); RETURN NEW; END $$"""))
            await conn.execute(text(
                "CREATE TRIGGER message_writes AFTER UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION log_message_write()"
            ))
        await set_clock(notify, local(2026, 11, 24, 23, 30))  # quiet hours (22:00–07:00)
        case = Case(channel="hotline")  # the citizen's SMS only, no inbox message
        await publish(infra.bootstrap_servers, settings.kafka_topic, case.received(), case.accepted())

        async def held() -> list[dict]:
            return [m for m in await message_states(notify, case) if m["channel"] == "sms" and m["state"] == "held"]

        [sms] = await eventually(held, what="the SMS held until morning")
        assert sms["next_attempt_at"].startswith("2026-11-24T23:00:00")  # 07:00 Beijing
        async with notify.runtime.engine.connect() as conn:
            writes = (await conn.execute(
                text("SELECT state FROM message_writes WHERE message_id = :id"), {"id": sms["id"]}
            )).scalars().all()
        assert writes == ["held"]  # no lease ("sending") before it
