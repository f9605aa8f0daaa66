"""The dispatch order's rules, without a database."""

import pytest

from dispatch.domain import (
    Action,
    ExtensionHistory,
    OrderState,
    Refused,
    ReturnRecord,
    allowed_actions,
    check_extension,
    check_return,
    next_state,
    order_number,
)


def test_the_streetlamp_order_goes_from_dispatch_to_closed():
    state = OrderState.dispatched
    for action, decision in [
        (Action.sign, None), (Action.file_plan, None), (Action.report_progress, None),
        (Action.resolve, None), (Action.verify, True), (Action.close, None),
    ]:
        state = next_state(state, action, decision=decision)
    assert state is OrderState.closed


def test_an_action_out_of_turn_names_the_state_and_what_is_allowed():
    with pytest.raises(Refused) as refused:
        next_state(OrderState.dispatched, Action.resolve)
    assert refused.value.code == "invalid-state"
    assert refused.value.state is OrderState.dispatched
    assert refused.value.allowed == ["claim", "pass_down", "report_up", "return", "sign"]  # the access rules narrow it per person


def test_a_reviewed_return_either_moves_the_case_or_sends_it_back():
    assert next_state(OrderState.returned, Action.review_return, decision=True) is OrderState.reassigned
    assert next_state(OrderState.returned, Action.review_return, decision=False) is OrderState.dispatched
    with pytest.raises(ValueError):
        next_state(OrderState.returned, Action.review_return)


def test_failed_verification_goes_back_to_the_unit_and_a_reopened_case_is_redone():
    assert next_state(OrderState.resolved, Action.verify, decision=False) is OrderState.in_progress
    assert next_state(OrderState.closed, Action.reopen) is OrderState.dispatched
    assert "reopen" in allowed_actions(OrderState.closed)


def test_returns_need_the_window_and_no_repeat_of_an_unreviewed_reason():
    check_return(reason_code="not_our_duty", within_window=True, earlier=[], state=OrderState.dispatched)
    with pytest.raises(Refused, match="window"):
        check_return(reason_code="not_our_duty", within_window=False, earlier=[], state=OrderState.dispatched)
    with pytest.raises(Refused) as refused:
        check_return(
            reason_code="not_our_duty", within_window=True,
            earlier=[ReturnRecord("not_our_duty", reviewed=False)], state=OrderState.dispatched,
        )
    assert refused.value.code == "return-repeated"
    check_return(
        reason_code="not_our_duty", within_window=True,
        earlier=[ReturnRecord("not_our_duty", reviewed=True)], state=OrderState.dispatched,
    )
    with pytest.raises(Refused):
        check_return(reason_code="x", within_window=True, earlier=[], state=OrderState.signed)


@pytest.mark.parametrize(
    ("granted", "days", "long_cycle", "ok"),
    [
        ([], 3, False, True),
        ([3, 3], 3, False, True),
        ([3, 3, 3], 3, False, False),  # a fourth short extension
        ([], 10, False, True),  # once, up to 10
        ([], 11, False, False),
        ([10], 2, False, False),  # nothing after the single long one
        ([3], 5, False, False),  # after a short one, only short ones
        ([60, 100], 20, True, True),  # long-cycle: up to 180 in all
        ([60, 100], 21, True, False),
        ([], 0, False, False),
    ],
)
def test_extension_limits(granted, days, long_cycle, ok):
    history = ExtensionHistory(approved_days=granted, long_cycle=long_cycle)
    if ok:
        check_extension(days, history, long_cycle=long_cycle)
    else:
        with pytest.raises(Refused) as refused:
            check_extension(days, history, long_cycle=long_cycle)
        assert refused.value.code == "extension-limit"


def test_order_number():
    assert order_number("XC", 2026, 42) == "JB-XC-2026-000042"
