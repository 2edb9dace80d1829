"""The SMS configuration screen says what a field needs in words, in English and Dutch, never
pydantic's raw pattern."""

from __future__ import annotations

import httpx

from tests.integration.test_web_sms_settings import INTELECOM, PATH, errors_of, general, post
from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

SERVICE_ID = f"{INTELECOM}service_id"


async def test_a_service_id_with_letters_is_refused_in_words(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Letters in the Service ID: "Use digits only." beside the field, in each language."""
    english = await post(admin, PATH, general(**{SERVICE_ID: "12ab"}))
    assert english.status_code == 422
    assert errors_of(english.text, SERVICE_ID) == ["Use digits only."]
    assert "should match pattern" not in english.text

    create_user(harness.service, "anna", "admin", language="nl")
    async with harness.browser() as client:
        await log_in(client, "anna")
        dutch = await post(client, PATH, general(**{SERVICE_ID: "12ab"}))
    assert errors_of(dutch.text, SERVICE_ID) == ["Gebruik alleen cijfers."]


async def test_a_refused_send_test_quotes_the_provider_in_a_dutch_sentence(
    harness: Harness,
) -> None:
    """The provider's refusal is shown after Dutch words, its own text quoted as English."""
    create_user(harness.service, "anna", "admin", language="nl")
    form = general(
        module="simulator",
        test_to="0612345678",
        test_text="Proef",
        **{"module_settings.simulator.permanent_failure_rate": "1"},
    )
    async with harness.browser() as client:
        await log_in(client, "anna")
        answer = await post(client, f"{PATH}/test", form)
    assert 'data-test-outcome="refused">Geweigerd: <code>SIM-400</code>' in answer.text
    assert (
        'De aanbieder antwoordde: <q class="provider-text" lang="en" data-user-text>'
        "Simulated permanent failure: number rejected.</q>" in answer.text
    )
