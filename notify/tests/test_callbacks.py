"""Callbacks (回访) and ratings against real PostgreSQL, the broker and the development receiver.

Events are put on the topic as the other services would write them (shared.testing.publish);
what notify sends is read back from the receiver, what it writes from the topic.
"""

from __future__ import annotations

from datetime import datetime

from notify.tests.helpers import OPERATOR, UNIT, callbacks_of, closed_case, events_of, local, rating_token, set_clock
from shared.actors import actor_headers
from shared.testing import AUDITOR, eventually, publish


async def test_callback_next_working_day_across_the_national_day_holiday(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 9, 30, 16, 30))
    # Wednesday 30 Sept 2026, the eve of National Day: 1–7 Oct are holidays (with the weekend),
    # so the callback is made on Thursday 8 Oct: from 09:00, due by the end of the day.
    case, task = await closed_case(notify, infra, receiver, local(2026, 9, 30, 16, 0))
    assert datetime.fromisoformat(task["opens_at"]) == local(2026, 10, 8, 9, 0)
    assert datetime.fromisoformat(task["due_at"]) == local(2026, 10, 9, 0, 0)
    assert (task["state"], task["round"], task["township"], task["tracking_no"]) == ("open", 0, "LB-WX-TW", case.tracking_no)
    # The citizen's closing notice names the callback day and carries a rating link.
    await rating_token(receiver, case)
    [closing] = [m for m in await receiver.messages(path="/sms", contains=case.tracking_no) if "销号" in m["json"]["text"]]
    assert "10月8日" in closing["json"]["text"]

    # Friday → Monday across a weekend.
    _, weekend_task = await closed_case(notify, infra, receiver, local(2026, 11, 20, 17, 0))
    assert datetime.fromisoformat(weekend_task["opens_at"]) == local(2026, 11, 23, 9, 0)
    assert datetime.fromisoformat(weekend_task["due_at"]) == local(2026, 11, 24, 0, 0)

    # The operators' queue: not yet due during the holiday; due on 8 Oct; overdue the day after.
    await set_clock(notify, local(2026, 10, 5, 10))
    queue = (await notify.client.get("/api/v1/callbacks", params={"view": "due", "township": "LB-WX-TW"}, headers=AUDITOR)).json()
    assert case.id not in {t["case_id"] for t in queue["items"]}
    await set_clock(notify, local(2026, 10, 8, 10))
    queue = (await notify.client.get("/api/v1/callbacks", params={"view": "due", "township": "LB-WX-TW", "limit": 500}, headers=AUDITOR)).json()
    assert [t["view"] for t in queue["items"] if t["case_id"] == case.id] == ["due"]
    other_township = (await notify.client.get("/api/v1/callbacks", params={"township": "LB-XC-CG"}, headers=AUDITOR)).json()
    assert case.id not in {t["case_id"] for t in other_township["items"]}
    await set_clock(notify, local(2026, 10, 8, 23, 59))
    for view, listed in (("today", True), ("overdue", False)):
        page = (await notify.client.get("/api/v1/callbacks", params={"view": view, "limit": 500}, headers=AUDITOR)).json()
        assert (case.id in {t["case_id"] for t in page["items"]}) is listed, view
    await set_clock(notify, local(2026, 10, 9, 10))
    overdue = (await notify.client.get("/api/v1/callbacks", params={"view": "overdue", "limit": 500}, headers=AUDITOR)).json()
    assert [t["view"] for t in overdue["items"] if t["case_id"] == case.id] == ["overdue"]
    today = (await notify.client.get("/api/v1/callbacks", params={"view": "today", "limit": 500}, headers=AUDITOR)).json()
    assert case.id not in {t["case_id"] for t in today["items"]}
    summary = (await notify.client.get("/api/v1/callbacks/summary", headers=AUDITOR)).json()
    [tw] = [row for row in summary["townships"] if row["township"] == "LB-WX-TW"]
    assert tw["overdue"] >= 1


async def test_callback_queue_pages(notify, infra, receiver) -> None:
    await set_clock(notify, local(2026, 10, 8, 10))
    await closed_case(notify, infra, receiver, local(2026, 9, 30, 11, 0))
    first = (await notify.client.get("/api/v1/callbacks", params={"view": "all", "limit": 1}, headers=AUDITOR)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = (await notify.client.get("/api/v1/callbacks", params={"view": "all", "limit": 1, "cursor": first["next_cursor"]}, headers=AUDITOR)).json()
    assert len(second["items"]) == 1 and second["items"][0]["id"] != first["items"][0]["id"]
    bad = await notify.client.get("/api/v1/callbacks", params={"cursor": "nonsense"}, headers=AUDITOR)
    assert bad.status_code == 400 and bad.json()["field"] == "cursor"


async def test_unreachable_citizen_tried_three_times_then_closed_as_unreachable(notify, infra, receiver, topic) -> None:
    await set_clock(notify, local(2026, 9, 30, 17))
    case, task = await closed_case(notify, infra, receiver, local(2026, 9, 30, 16, 0))
    url = f"/api/v1/callbacks/{task['id']}/result"

    await set_clock(notify, local(2026, 10, 8, 10))
    first = await notify.client.post(url, json={"reached": False}, headers=OPERATOR)
    assert first.status_code == 200, first.text
    assert (first.json()["state"], first.json()["attempts"]) == ("open", 1)
    # The next try's window by the same rule, from the attempt's time: Friday 9 Oct.
    next_window = (datetime.fromisoformat(first.json()["next_opens_at"]), datetime.fromisoformat(first.json()["next_due_at"]))
    assert next_window == (local(2026, 10, 9, 9), local(2026, 10, 10, 0))
    [retried] = await callbacks_of(notify, case)
    assert (datetime.fromisoformat(retried["opens_at"]), datetime.fromisoformat(retried["due_at"])) == next_window
    assert retried["view"] == "upcoming"

    await set_clock(notify, local(2026, 10, 9, 10))
    second = (await notify.client.post(url, json={"reached": False}, headers=OPERATOR)).json()
    # Saturday 10 Oct 2026 is a make-up working day (调休): the third try is then.
    assert (second["attempts"], datetime.fromisoformat(second["next_opens_at"])) == (2, local(2026, 10, 10, 9))
    assert datetime.fromisoformat(second["next_due_at"]) == local(2026, 10, 11, 0)

    await set_clock(notify, local(2026, 10, 10, 10))
    third = (await notify.client.post(url, json={"reached": False, "comment": "关机"}, headers=OPERATOR)).json()
    assert (third["state"], third["attempts"], third["events"]) == ("unreachable", 3, ["case.callback_completed"])

    [completed] = await events_of(topic, case, "case.callback_completed")
    assert (completed.payload.reached, completed.payload.attempt, completed.payload.round) == (False, 3, 0)
    assert completed.actor.id == "op-1"
    assert await topic.events(case_id=case.id, types="case.rated") == []

    fourth = await notify.client.post(url, json={"reached": False}, headers=OPERATOR)
    assert fourth.status_code == 409
    assert fourth.json()["state"] == "unreachable" and fourth.json()["allowed_actions"] == []
    citizen = await notify.client.post(url, json={"reached": False}, headers=actor_headers("c", "citizen"))
    assert citizen.status_code == 403  # a citizen's role records no callback, whatever the task: nothing to probe


async def test_unsatisfied_callback_writes_the_rating_for_dispatch_to_reopen(notify, infra, receiver, topic) -> None:
    await set_clock(notify, local(2026, 11, 23, 10))
    case, task = await closed_case(notify, infra, receiver, local(2026, 11, 20, 15, 0))
    url = f"/api/v1/callbacks/{task['id']}/result"
    missing = await notify.client.post(url, json={"reached": True}, headers=OPERATOR)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "rating"

    answer = await notify.client.post(url, json={"reached": True, "rating": "不满意", "comment": "路灯又坏了，电话13800001111"},
                                      headers=OPERATOR)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"] == ["case.callback_completed", "case.rated"]
    [completed] = await events_of(topic, case, "case.callback_completed")
    assert (completed.payload.reached, completed.payload.rating, completed.payload.attempt) == (True, "不满意", 1)
    [rated] = await events_of(topic, case, "case.rated")
    assert (rated.payload.rating, rated.payload.source, rated.payload.round, rated.payload.units) == ("不满意", "callback", 0, [UNIT])
    assert rated.causation_id == completed.id
    assert "13800001111" not in (rated.payload.comment or "") and "138****1111" in rated.payload.comment


async def test_app_rating_with_a_one_time_token(notify, infra, receiver, topic) -> None:
    await set_clock(notify, local(2026, 11, 23, 10))
    case, _ = await closed_case(notify, infra, receiver, local(2026, 11, 23, 9, 30))
    other, _ = await closed_case(notify, infra, receiver, local(2026, 11, 23, 9, 40))
    token = await rating_token(receiver, case)
    other_token = await rating_token(receiver, other)

    foreign = await notify.client.post(f"/api/v1/cases/{case.id}/rating", json={"token": other_token, "rating": "满意"})
    assert foreign.status_code == 403 and foreign.json()["type"].endswith("rating-token-invalid")
    forged = await notify.client.post(f"/api/v1/cases/{case.id}/rating", json={"token": "x" * 32, "rating": "满意"})
    assert forged.status_code == 403

    rated = await notify.client.post(f"/api/v1/cases/{case.id}/rating", json={"token": token, "rating": "满意", "comment": "很好"})
    assert rated.status_code == 201, rated.text
    assert rated.json() == {"case_id": case.id, "round": 0, "rating": "满意", "source": "app"}
    [event] = await events_of(topic, case, "case.rated")
    assert (event.payload.rating, event.payload.source, event.payload.round, event.payload.units) == ("满意", "app", 0, [UNIT])
    assert event.actor.role == "citizen"

    replayed = await notify.client.post(f"/api/v1/cases/{case.id}/rating", json={"token": token, "rating": "不满意"})
    assert replayed.status_code == 409 and replayed.json()["type"].endswith("rating-token-used")
    assert len(await topic.events(case_id=case.id, types="case.rated")) == 1
    # The foreign token was refused on the wrong case and still works on its own.
    own = await notify.client.post(f"/api/v1/cases/{other.id}/rating", json={"token": other_token, "rating": "基本满意"})
    assert own.status_code == 201


async def test_a_reopened_case_refuses_the_earlier_rounds_token(notify, infra, receiver, topic) -> None:
    await set_clock(notify, local(2026, 11, 23, 10))
    case, _ = await closed_case(notify, infra, receiver, local(2026, 11, 23, 9, 0))
    old_token = await rating_token(receiver, case)
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, case.reopened(1), case.dispatched(1))

    async def round_one() -> list[dict]:
        return [t for t in await callbacks_of(notify, case) if t["state"] == "superseded"]

    await eventually(round_one, what="round 0 callback superseded")
    stale = await notify.client.post(f"/api/v1/cases/{case.id}/rating", json={"token": old_token, "rating": "满意"})
    assert stale.status_code == 409 and stale.json()["type"].endswith("rating-token-stale")
    assert "round 1" in stale.json()["detail"]


async def test_questionnaire_answers_become_a_rating(notify, infra, receiver, topic) -> None:
    await set_clock(notify, local(2026, 11, 23, 10))
    case, _ = await closed_case(notify, infra, receiver, local(2026, 11, 23, 9, 50))
    token = await rating_token(receiver, case, "questionnaire")
    form = await notify.client.get(f"/api/v1/cases/{case.id}/questionnaire", params={"token": token}, headers=AUDITOR)
    assert form.status_code == 200 and form.json()["questions"][0]["id"] == "overall"
    wrong = await notify.client.post(f"/api/v1/cases/{case.id}/questionnaire",
                                     json={"token": token, "answers": {"overall": "还行"}})  # fmt: skip
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "answers.overall"
    done = await notify.client.post(f"/api/v1/cases/{case.id}/questionnaire",
                                    json={"token": token, "answers": {"overall": "基本满意", "timely": "及时"}})  # fmt: skip
    assert done.status_code == 201 and done.json()["rated"] is True
    [rated] = await events_of(topic, case, "case.rated")
    assert (rated.payload.rating, rated.payload.source) == ("基本满意", "questionnaire")
    again = await notify.client.post(f"/api/v1/cases/{case.id}/questionnaire",
                                     json={"token": token, "answers": {"overall": "满意"}})  # fmt: skip
    assert again.status_code == 409
