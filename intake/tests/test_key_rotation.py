"""Rotating the key ring that seals citizens' personal data (its own module: it rewrites
every row of this module's database under a key the running service does not hold)."""

from __future__ import annotations

from shared.crypto import KeyRing
from shared.testing import AUDITOR

from intake.personal import SEALED, rotate_keys
from intake.service import PHONE_CONTEXT, IntakeContext, pii_key_spec
from intake.tests.test_intake_api import PHONE, STREETLAMP, post


async def test_rotation_reencrypts_every_row_under_the_new_key_and_is_safe_to_rerun(intake):
    filed = [(await post(intake, {**STREETLAMP, "title": f"路灯不亮 {i}"})).json()["case_id"] for i in range(3)]
    old = IntakeContext.keyring(intake.settings)
    new_entry = KeyRing.generate_spec("k2")
    ring = KeyRing.from_spec(f"{pii_key_spec(intake.settings)},{new_entry}")  # the new key last: it encrypts
    assert ring.current == "k2" and old.current != "k2"

    lines: list[str] = []
    engine = intake.runtime.engine
    rewritten = await rotate_keys(engine, ring, batch=2, progress=lines.append)
    assert rewritten >= 3 and lines[-1].startswith("done")
    assert any("so far" in line for line in lines)  # progress while it works

    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql("SELECT case_id, contact_name_enc, phone_enc, id_number_enc, address_enc FROM appeals")).all()
    mine = [r for r in rows if r.case_id in filed]
    assert len(mine) == 3
    for row in mine:
        for column in SEALED:
            value = getattr(row, column)
            assert value is None or not ring.needs_rotation(value), (row.case_id, column)
        assert ring.decrypt(row.phone_enc, context=PHONE_CONTEXT) == PHONE
    assert await rotate_keys(engine, ring, progress=lines.append) == 0  # nothing left to do
    # The lists never needed the key: the masked phone is stored beside the sealed one.
    view = (await intake.client.get(f"/api/v1/appeals/{filed[0]}", headers=AUDITOR)).json()
    assert view["contact_phone"].startswith("139") or "*" in view["contact_phone"]

