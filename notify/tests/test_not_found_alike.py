"""A callback task the caller may not see answers exactly like one that does not exist
(issue #20): the same 404, naming the task and never its case, so sequential task ids
cannot be probed for another township's cases."""

from __future__ import annotations

import re

from shared.actors import actor_headers

from notify.tests.helpers import closed_case, local

CHENGGUAN = actor_headers("cg-op", "township_staff", "LB-XC-CG")
TONGWAN = actor_headers("tw-op", "township_staff", "LB-WX-TW")


def _without(answer, task_id: int) -> tuple[int, str, str]:
    """The answer with the id it was asked about blanked out: all that may differ."""
    return answer.status_code, answer.headers["content-type"], re.sub(rf"(?<!\w){task_id}(?!\w)", "<id>", answer.text)


async def test_another_townships_callback_answers_like_a_missing_one(notify, infra, receiver) -> None:
    case, task = await closed_case(notify, infra, receiver, local(2026, 11, 23, 10), township="LB-WX-TW")
    assert (await notify.client.get(f"/api/v1/callbacks/{task['id']}", headers=TONGWAN)).status_code == 200
    missing = task["id"] + 10_000_000
    result = {"reached": True, "rating": "满意"}
    for method, suffix, body in (("GET", "", None), ("POST", "/result", result)):
        foreign = await notify.client.request(method, f"/api/v1/callbacks/{task['id']}{suffix}", json=body, headers=CHENGGUAN)
        unknown = await notify.client.request(method, f"/api/v1/callbacks/{missing}{suffix}", json=body, headers=CHENGGUAN)
        assert foreign.status_code == 404, foreign.text
        assert case.id not in foreign.text
        assert _without(foreign, task["id"]) == _without(unknown, missing), (foreign.text, unknown.text)
