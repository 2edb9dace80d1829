"""Every module's inbound callback: a text with control characters is stored, never a 5xx.

A provider retries a callback we answer with an error, so an SMS that carries a NUL (which
PostgreSQL cannot store) would come back forever; it is kept with the character replaced
and marked instead. The PostgreSQL side is in tests/integration/test_text_rules.py.
"""

from __future__ import annotations

import pytest

from tests.contract.conftest import Contract


async def test_an_inbound_sms_with_a_nul_is_stored_replaced_and_marked(contract: Contract) -> None:
    if not contract.fake.supports_inbound:
        pytest.skip(f"{contract.module} does not forward inbound SMS")
    answer = await contract.fake.send_inbound(
        contract.harness.client, "+31611122233", "+31612000000", "code\x001234\x07"
    )
    assert answer.status_code < 500, answer.text
    if not answer.is_success:
        # A format that cannot carry the character at all (XML) is refused as malformed.
        assert contract.inbound_rows() == []
        return
    [row] = contract.inbound_rows()
    assert row.body == "code\ufffd1234\ufffd"
    assert row.text_altered is True
