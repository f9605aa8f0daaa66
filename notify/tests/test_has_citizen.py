"""A task item (自上而下的任务) has no citizen to call back or ask for a rating; every appeal
channel has one (notify.domain.has_citizen)."""

from notify.domain import has_citizen
from shared.events import Channel


def test_only_a_task_item_has_no_citizen():
    assert not has_citizen(Channel.task.value)
    assert all(has_citizen(c.value) for c in Channel if c is not Channel.task)
    assert has_citizen(None)  # a case notify learnt of before its channel: the citizen is not skipped
