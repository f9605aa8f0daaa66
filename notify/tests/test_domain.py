"""Notify's pure rules: callback days, retries, quiet hours, rate limits, planning, tokens."""

from datetime import UTC, datetime, time, timedelta

import pytest

from notify import domain
from notify.templates import render
from shared.events import (
    CaseAccepted, AcceptedData, CaseDispatched, DispatchedData, CountyCalled, CountyCalledData,
    SlaBreached, SlaBreachedData, SlaEscalated, SlaEscalatedData, ClockKind, WhistleBlown, WhistleBlownData, make_event, system_actor,
)  # fmt: skip
from shared.callback import callback_window
from shared.errors import Conflict, Expired, Forbidden
from shared.workdays import LOCAL, WorkingCalendar

CAL = WorkingCalendar()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL)


@pytest.mark.parametrize(
    ("closed", "day"),
    [
        (local(2026, 9, 30, 16, 0), (2026, 10, 8)),  # National Day week: next working day is 8 Oct
        (local(2026, 11, 20, 17, 30), (2026, 11, 23)),  # Friday → Monday
        (local(2026, 11, 24, 23, 59), (2026, 11, 25)),  # late evening → tomorrow
        (local(2026, 10, 9, 10, 0), (2026, 10, 10)),  # Saturday 10 Oct 2026 is a make-up working day (调休)
    ],
)
def test_callback_window_is_the_working_day_after_closure(closed: datetime, day: tuple[int, int, int]) -> None:
    window = callback_window(CAL, closed)
    # Calling from 09:00 that day; late once the day is over (00:00 Beijing of the next).
    assert (window.opens_at, window.due_at) == (local(*day, 9), local(*day) + timedelta(days=1))


def test_unreachable_is_tried_three_times_over_three_working_days_then_closed() -> None:
    first = domain.record_attempt(CAL, attempts_before=0, reached=False, at=local(2026, 10, 8, 10))
    assert (first.state, first.attempts, first.emit_completed) == ("open", 1, False)
    assert first.window == callback_window(CAL, local(2026, 10, 8, 10))  # the next try by the same rule
    assert (first.window.opens_at, first.window.due_at) == (local(2026, 10, 9, 9), local(2026, 10, 10))
    second = domain.record_attempt(CAL, attempts_before=1, reached=False, at=local(2026, 10, 9, 10))
    assert (second.state, second.window.opens_at, second.window.due_at) == ("open", local(2026, 10, 10, 9), local(2026, 10, 11))
    third = domain.record_attempt(CAL, attempts_before=2, reached=False, at=local(2026, 10, 10, 10))
    assert (third.state, third.attempts, third.window, third.emit_completed) == ("unreachable", 3, None, True)
    reached = domain.record_attempt(CAL, attempts_before=1, reached=True, at=local(2026, 10, 9, 10))
    assert (reached.state, reached.attempts, reached.emit_completed) == ("done", 2, True)


def test_callback_views() -> None:
    opens, due = local(2026, 10, 8, 9), local(2026, 10, 9)
    assert domain.callback_view(opens, due, local(2026, 10, 8, 8, 59)) == "upcoming"
    assert domain.callback_view(opens, due, local(2026, 10, 8, 9)) == "due"
    assert domain.callback_view(opens, due, local(2026, 10, 8, 23, 59)) == "due"
    assert domain.callback_view(opens, due, local(2026, 10, 9)) == "overdue"


def test_quiet_hours_hold_until_seven_in_beijing() -> None:
    start, end = time(22), time(7)
    assert domain.quiet_until(local(2026, 11, 23, 23, 10), start, end) == local(2026, 11, 24, 7)
    assert domain.quiet_until(local(2026, 11, 24, 3, 0), start, end) == local(2026, 11, 24, 7)
    assert domain.quiet_until(local(2026, 11, 24, 7, 0), start, end) is None
    assert domain.quiet_until(local(2026, 11, 24, 21, 59), start, end) is None
    # 23:30 in Beijing is 15:30 UTC: the rule is about local time, whatever the input zone.
    assert domain.quiet_until(datetime(2026, 11, 23, 15, 30, tzinfo=UTC), start, end) == local(2026, 11, 24, 7)
    assert domain.quiet_until(local(2026, 11, 24, 13), time(12), time(14)) == local(2026, 11, 24, 14)


def test_rate_limit_and_backoff() -> None:
    now = datetime(2026, 11, 23, 10, tzinfo=UTC)
    window = timedelta(hours=1)
    sent = [now - timedelta(minutes=m) for m in (50, 30, 10)]
    assert domain.rate_limited_until(sent, now, limit=4, window=window) is None
    assert domain.rate_limited_until(sent, now, limit=3, window=window) == now + timedelta(minutes=10)
    assert domain.rate_limited_until([now - timedelta(hours=2)] * 5, now, limit=3, window=window) is None
    assert [domain.backoff(n, base=1, cap=5).total_seconds() for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_tokens_are_random_hashed_and_refused_with_reasons() -> None:
    token, digest = domain.new_token()
    other, _ = domain.new_token()
    assert token != other and len(token) >= 32 and digest == domain.token_hash(token) and token not in digest
    now = datetime(2026, 11, 23, tzinfo=UTC)
    ok = dict(found=True, token_case="c1", token_round=0, used_at=None, expires_at=now + timedelta(days=1),
              case_id="c1", current_round=0, now=now)  # fmt: skip
    assert domain.check_token(**ok) is None
    assert domain.check_token(**{**ok, "found": False}).kind is Forbidden
    assert domain.check_token(**{**ok, "token_case": "c2"}).code == "rating-token-invalid"
    used = domain.check_token(**{**ok, "used_at": now})
    assert used.kind is Conflict and used.code == "rating-token-used"
    stale = domain.check_token(**{**ok, "current_round": 1})
    assert stale.kind is Conflict and stale.code == "rating-token-stale" and "round 1" in stale.detail
    assert domain.check_token(**{**ok, "expires_at": now}).kind is Expired


def test_questionnaire_sample_is_deterministic_and_near_one_in_n() -> None:
    picked = [domain.sampled_for_questionnaire(f"case-{i}", 10) for i in range(5000)]
    assert picked == [domain.sampled_for_questionnaire(f"case-{i}", 10) for i in range(5000)]
    assert 350 < sum(picked) < 650
    assert domain.sampled_for_questionnaire("anything", 1)


def _event(cls, data, case_id="c1"):  # noqa: ANN001, ANN202
    return make_event(cls, case_id=case_id, payload=data, producer="test", actor=system_actor("test"))


def test_plan_citizen_messages_follow_the_case_channel() -> None:
    accepted = _event(CaseAccepted, AcceptedData(tracking_no="XC-1", notice="已受理"))
    app_case = domain.CaseView("c1", tracking_no="XC-1", channel="app", has_phone=True, citizen_ref="r1")
    planned = domain.plan_messages(accepted, app_case)
    assert {(p.recipient, p.channel, p.kind) for p in planned} == {
        ("citizen:r1", "sms", "citizen.accepted"), ("citizen:r1", "inbox", "citizen.accepted"),
    }  # fmt: skip
    hotline_case = domain.CaseView("c1", tracking_no="XC-1", channel="hotline", has_phone=False, external_ref="T-9")
    planned = domain.plan_messages(accepted, hotline_case)
    assert [(p.recipient, p.channel) for p in planned] == [("hotline:12345", "hotline")]
    assert planned[0].data["ticket_no"] == "T-9" and planned[0].data["status"] == "accepted"


def test_plan_unit_messages_red_card_reaches_the_head() -> None:
    case = domain.CaseView("c1", units=("LB-XC-ZJJ",))
    breached = _event(SlaBreached, SlaBreachedData(clock_id="k", clock=ClockKind.resolve, due_at=datetime.now(UTC)))
    planned = domain.plan_messages(breached, case)
    assert {(p.recipient, p.kind, p.urgent) for p in planned} == {
        ("unit:LB-XC-ZJJ:duty", "unit.red_card", True), ("unit:LB-XC-ZJJ:head", "unit.red_card", True),
    }  # fmt: skip
    dispatched = _event(CaseDispatched, DispatchedData(order_no="O-1", unit="LB-XC-SLJ", unit_name="水利局"))
    kinds = {(p.recipient, p.kind) for p in domain.plan_messages(dispatched, domain.CaseView("c1", has_phone=True))}
    assert kinds == {("citizen:c1", "citizen.dispatched"), ("unit:LB-XC-SLJ:duty", "unit.dispatched")}


def test_an_escalation_reaches_the_unit_its_head_and_the_centre_that_supervises() -> None:
    """督办: the unit's duty inbox and its head (urgent), and the centre serving it, told which
    unit handles the case and why, in words."""
    case = domain.CaseView("c1", tracking_no="XC-7", units=("LB-XC-ZJJ",), unit_names={"LB-XC-ZJJ": "住建局"}, centre="LB-XC-ZZZX")
    escalated = _event(SlaEscalated, SlaEscalatedData(reason="redo_limit", unit="LB-XC-ZJJ", detail="redo round 3"))
    planned = domain.plan_messages(escalated, case)
    assert {(p.recipient, p.kind, p.urgent) for p in planned} == {
        ("unit:LB-XC-ZJJ:duty", "unit.escalated", True), ("unit:LB-XC-ZJJ:head", "unit.escalated", True),
        ("unit:LB-XC-ZZZX:duty", "unit.escalated.centre", True),
    }  # fmt: skip
    [to_centre] = [p for p in planned if p.kind == "unit.escalated.centre"]
    text = render(to_centre.kind, to_centre.channel, to_centre.data, to_citizen=False)
    assert text.startswith("督办提请：住建局承办的诉求XC-7已提级督办（群众三次不满意、已重办三次）")
    # Without a centre (none above the unit) the unit and its head are still told.
    assert len(domain.plan_messages(escalated, domain.CaseView("c1", units=("LB-XC-ZJJ",)))) == 2
    # A red card is not the centre's: only 督办 is.
    breached = _event(SlaBreached, SlaBreachedData(clock_id="k", clock=ClockKind.resolve, due_at=datetime.now(UTC)))
    assert all(p.kind != "unit.escalated.centre" and "ZZZX" not in p.recipient for p in domain.plan_messages(breached, case))


def test_a_called_department_reads_the_townships_name_not_its_code() -> None:
    for event_type, data in (
        (CountyCalled, CountyCalledData(call_id="k", township="LB-WX-TW", township_name="通挽镇", units=["LB-WX-SLJ"], reason="需清理排水沟")),
        (WhistleBlown, WhistleBlownData(call_id="w", township="LB-WX-TW", township_name="通挽镇", lead_unit="LB-WX-JTJ",
                                         lead_unit_name="忻城县交通运输局", reason="鱼塘护栏")),
    ):  # fmt: skip
        [planned, *_] = domain.plan_messages(_event(event_type, data), domain.CaseView("c1", tracking_no="XC-1"))
        text = render(planned.kind, planned.channel, planned.data, to_citizen=False)
        assert "通挽镇" in text and "LB-WX-" not in text, text  # the township and the lead unit by name


def test_unit_text_is_masked_citizen_text_is_not() -> None:
    called = _event(CountyCalled, CountyCalledData(call_id="k", township="通挽镇", units=["LB-WX-SLJ"],
                                                     reason="群众13812345678反映停水"))  # fmt: skip
    [planned] = domain.plan_messages(called, domain.CaseView("c1", tracking_no="XC-1"))
    text = render(planned.kind, planned.channel, planned.data, to_citizen=False)
    assert "138****5678" in text and "13812345678" not in text and "乡呼县应" in text
    sms = render("citizen.resolved", "sms", {"tracking_no": "XC-1", "answer": "请拨13812345678联系"}, to_citizen=True)
    assert sms.startswith("【接诉即办】") and "13812345678" in sms


# 首问负责制: the first-responsible unit gets a copy of the cards and urgings.


def _sla(cls, data_cls, **data):
    return make_event(cls, case_id="c-first", producer="sla", actor=system_actor("sla"), payload=data_cls(**data))


def _first_case(first_unit):
    return domain.CaseView(case_id="c-first", tracking_no="XC-1", units=("LB-XC-ZJJ",),
                           unit_names={"LB-XC-ZJJ": "住建局"}, first_unit=first_unit)  # fmt: skip


def test_the_first_unit_gets_a_copy_of_a_red_card_naming_who_handles_the_case():
    red = _sla(SlaBreached, SlaBreachedData, clock_id="k", clock=ClockKind.resolve, unit="LB-XC-ZJJ", due_at=datetime(2026, 11, 2, tzinfo=UTC))
    planned = domain.plan_messages(red, _first_case("LB-XC-CG-CZ"))
    copies = [p for p in planned if p.recipient == "unit:LB-XC-CG-CZ:duty"]
    assert [(p.kind, p.channel, p.urgent) for p in copies] == [("unit.red_card.first_unit", "inbox", True)]
    text = render(copies[0].kind, "inbox", copies[0].data, to_citizen=False)
    assert "首问负责抄送" in text and "住建局" in text
    # The handler's own messages are unchanged.
    assert {p.recipient for p in planned if p.kind == "unit.red_card"} == {"unit:LB-XC-ZJJ:duty", "unit:LB-XC-ZJJ:head"}


def test_no_copy_when_the_first_unit_is_the_one_carded_or_for_an_early_reminder():
    from shared.events import SlaUrged, SlaUrgedData, SlaWarning, SlaWarningData

    urged = _sla(SlaUrged, SlaUrgedData, clock_id="k", clock=ClockKind.resolve, unit="LB-XC-ZJJ", overdue_working_days=1, sequence=1)
    assert not [p for p in domain.plan_messages(urged, _first_case("LB-XC-ZJJ")) if p.kind.endswith(".first_unit")]
    assert not [p for p in domain.plan_messages(urged, _first_case(None)) if p.kind.endswith(".first_unit")]
    assert [p.kind for p in domain.plan_messages(urged, _first_case("LB-XC-CG-CZ")) if p.kind.endswith(".first_unit")] == ["unit.urged.first_unit"]
    due = datetime(2026, 11, 2, tzinfo=UTC)
    early = _sla(SlaWarning, SlaWarningData, clock_id="k", clock=ClockKind.resolve, unit="LB-XC-ZJJ", due_at=due, threshold="50%", level="info")
    yellow = _sla(SlaWarning, SlaWarningData, clock_id="k", clock=ClockKind.resolve, unit="LB-XC-ZJJ", due_at=due, threshold="yellow")
    assert not [p for p in domain.plan_messages(early, _first_case("LB-XC-CG-CZ")) if p.kind.endswith(".first_unit")]
    assert [p.kind for p in domain.plan_messages(yellow, _first_case("LB-XC-CG-CZ")) if p.kind.endswith(".first_unit")] == ["unit.yellow_card.first_unit"]


def test_an_early_warnings_card_is_told_to_the_unit_warned_as_a_cases_is() -> None:
    """sla.warning_signal (预警信息处置): the unit warned's duty inbox for every card, and its head
    as well for a red card or 督办 — the rule a case's cards follow; no case, so no citizen,
    no first-unit copy, no 12345 webhook."""
    from shared.events import SlaWarningSignal, SlaWarningSignalData

    def signal(kind: str, threshold: str, level: str) -> SlaWarningSignal:
        payload = SlaWarningSignalData(
            warning_id="w-1", clock_id="w-1:warning_acknowledge:LB-XC-ZJJ:0", clock="warning_acknowledge", unit="LB-XC-ZJJ",
            signal=kind, threshold=threshold, level=level, due_at=datetime(2026, 11, 17, 1, tzinfo=UTC),
            sequence=1 if kind == "urged" else None,
        )  # fmt: skip
        return make_event(SlaWarningSignal, payload=payload, producer="sla", actor=system_actor("sla"))

    no_case = domain.CaseView("", first_unit="LB-XC-CG")
    red = domain.plan_messages(signal("breached", "red", "red"), no_case)
    assert [(p.recipient, p.kind, p.urgent) for p in red] == [
        ("unit:LB-XC-ZJJ:duty", "unit.warning.red_card", True), ("unit:LB-XC-ZJJ:head", "unit.warning.red_card", True)]
    assert "w-1未按时签收" in render(red[1].kind, red[1].channel, red[1].data, to_citizen=False)
    yellow = domain.plan_messages(signal("warning", "yellow", "yellow"), no_case)
    assert [(p.recipient, p.kind) for p in yellow] == [("unit:LB-XC-ZJJ:duty", "unit.warning.yellow_card")]
    urged = domain.plan_messages(signal("urged", "urge-1", "red"), no_case)
    assert "催办（第1次）" in render(urged[0].kind, urged[0].channel, urged[0].data, to_citizen=False)
