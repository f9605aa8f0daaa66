"""12345 pushes a signed batch; intake files each ticket; every status comes back to 12345
through notify's signed webhook — all as separate processes, over HTTP and the topic."""

from __future__ import annotations

import json
import time

import pytest

from shared.signing import SignedRequest, signature_headers, verify
from shared.testing import eventually
from tests.e2e.harness import HOTLINE_SECRET, WEBHOOK_SECRET

pytestmark = pytest.mark.slow

PATH = "/api/v1/hotline/tickets"


def ticket(no: str, text: str, phone: str) -> dict:
    return {"ticket_no": no, "title": text[:12], "description": text, "caller_name": "蓝女士", "caller_phone": phone}


async def test_a_12345_batch_is_filed_and_each_status_goes_back_signed(platform):
    tickets = [
        ticket("RX20261123001", "忻城县城关镇城中社区西宁街路灯不亮，晚上很黑。", "13977710001"),
        ticket("RX20261123002", "通挽镇大塘村鱼塘边没有护栏，孩子上学路过很危险。", "13977710002"),
        {"ticket_no": "RX20261123003", "title": "缺电话"},  # incomplete: refused on its own
    ]
    body = json.dumps({"tickets": tickets}, ensure_ascii=False).encode()
    headers = signature_headers("hotline12345", HOTLINE_SECRET, method="POST", path=PATH, body=body)
    answer = await platform.intake.post(PATH, content=body, headers={**headers, "content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["created"], result["duplicate"], result["rejected"]) == (2, 0, 1)
    filed = {r["ticket_no"]: r["case_id"] for r in result["results"] if r["result"] == "created"}

    async def status_posts() -> list[dict] | None:
        found = (await platform.receiver.get("/messages", params={"path": "/hotline"})).json()["items"]
        accepted = [m for m in found if m["json"]["status"] == "accepted"]
        return found if len(accepted) == 2 else None

    posts = await eventually(status_posts, timeout=60, what="12345 to be told both tickets were accepted")
    accepted = {m["json"]["ticket_no"]: m for m in posts if m["json"]["status"] == "accepted"}
    assert set(accepted) == set(filed), "each ticket's status reaches 12345 under its own ticket number"
    for ticket_no, post in accepted.items():
        assert post["json"]["case_id"] == filed[ticket_no]
        assert "13977710" not in post["body"], "the caller's phone is not sent back"
        h = post["headers"]
        signed = SignedRequest(
            client_id=h["x-client-id"], timestamp=h["x-timestamp"], nonce=h["x-nonce"], signature=h["x-signature"],
            method="POST", path=post["target"], body=post["body"].encode(),
        )
        assert verify(signed, {h["x-client-id"]: WEBHOOK_SECRET}, now=time.time()) == h["x-client-id"]
        assert h["idempotency-key"] == post["json"]["event_id"], "12345 applies each status once"

    # The citizen's own view at intake shows the same case, and a re-push is a no-op.
    again = await platform.intake.post(
        PATH, content=body,
        headers={**signature_headers("hotline12345", HOTLINE_SECRET, method="POST", path=PATH, body=body),
                 "content-type": "application/json"},
    )
    assert again.json()["duplicate"] == 2 and again.json()["created"] == 0
