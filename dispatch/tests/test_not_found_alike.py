"""An extension request on an order the caller may not read answers exactly like one that
does not exist (issue #20): the same 404, naming neither the order nor its case."""

from __future__ import annotations

from shared.actors import actor_headers

from dispatch.tests.helpers import DISPATCHER, extension_asked

XINGBIN = actor_headers("xb", "centre_dispatcher", "LB-XB-ZZZX")


async def test_another_countys_extension_decision_answers_like_a_missing_one(dispatch):
    case_id, no, request_id = await extension_asked(dispatch)
    missing_id = "EXT-000000000000"
    for body in ({"approve": True}, {"approve": False, "reason": "不同意"}):
        foreign = await dispatch.client.post(f"/api/v1/extensions/{request_id}/decision", json=body, headers=XINGBIN)
        unknown = await dispatch.client.post(f"/api/v1/extensions/{missing_id}/decision", json=body, headers=XINGBIN)
        assert foreign.status_code == unknown.status_code == 404, foreign.text
        assert no not in foreign.text and case_id not in foreign.text
        assert foreign.headers["content-type"] == unknown.headers["content-type"]
        assert foreign.text.replace(request_id, "<id>") == unknown.text.replace(missing_id, "<id>")
    # Still pending for the centre that may decide it.
    decided = await dispatch.client.post(f"/api/v1/extensions/{request_id}/decision", json={"approve": True}, headers=DISPATCHER)
    assert decided.status_code == 200, decided.text
