"""The SMS configuration: per-field validation, the seed's module fields, secrets at rest."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from smsdesk.domain.settings import MASK
from smsdesk.store.tables import settings
from tests.support.harness import Harness, running_service

INTELECOM_FIELDS = [
    "sms_endpoint",
    "use_web_service",
    "delivery_report",
    "service_id",
    "username",
    "password",
    "sms_priority",
]


def raw_settings(h: Harness) -> str:
    """Every stored settings value as text, as someone reading the database file would see it."""
    with h.service.engine.connect() as conn:
        return "\n".join(conn.execute(sa.select(settings.c.value)).scalars())


def errors_by_field(response_body: dict[str, Any]) -> dict[str, str]:
    return {f["field"]: f["message"] for f in response_body["error"]["fields"]}


async def test_fresh_installation_has_working_defaults(harness: Harness) -> None:
    """Before anyone saves anything, the simulator is chosen and messages can be sent."""
    body = (await harness.get("/api/v1/settings")).json()
    assert body["module"] == "simulator"
    assert body["sender"] == "smsdesk"
    assert body["max_segments"] == 10


async def test_every_invalid_field_is_reported_and_nothing_is_saved(harness: Harness) -> None:
    """One save with five mistakes names all five fields; the stored configuration is unchanged."""
    await harness.configure(default_country_code="+47", sender="Support")
    response = await harness.put(
        "/api/v1/settings",
        {
            "module": "original_intelecom",
            "default_country_code": "+999",
            "sender": "Customer Service Desk",
            "module_settings": {
                "original_intelecom": {"service_id": "abc", "sms_priority": 4},
            },
        },
    )
    assert response.status_code == 422
    errors = errors_by_field(response.json())
    assert "country calling code" in errors["default_country_code"]
    assert "11" in errors["sender"]
    assert "module_settings.original_intelecom.service_id" in errors
    assert "3" in errors["module_settings.original_intelecom.sms_priority"]
    stored = (await harness.get("/api/v1/settings")).json()
    assert (stored["module"], stored["default_country_code"], stored["sender"]) == (
        "simulator",
        "+47",
        "Support",
    )
    assert "original_intelecom" not in stored["module_settings"]


async def test_unknown_module_is_refused_with_the_list_of_modules(harness: Harness) -> None:
    response = await harness.put("/api/v1/settings", {"module": "nokia"})
    assert response.status_code == 422
    message = errors_by_field(response.json())["module"]
    assert "nokia" in message and "simulator" in message


async def test_seed_modules_declare_exactly_the_seed_fields(harness: Harness) -> None:
    """Original Intelecom and Original PsWinCom have the fields of the original screen."""
    modules = {m["name"]: m for m in (await harness.get("/api/v1/modules")).json()["modules"]}
    intelecom = modules["original_intelecom"]["settings_schema"]["properties"]
    assert list(intelecom) == INTELECOM_FIELDS
    assert intelecom["sms_priority"]["minimum"] == 1 and intelecom["sms_priority"]["maximum"] == 3
    assert intelecom["password"]["writeOnly"] is True
    pswincom = modules["original_pswincom"]["settings_schema"]["properties"]
    assert list(pswincom) == ["sms_endpoint", "username", "password"]
    assert modules["original_intelecom"]["plugin_keys"] == [
        "intele_password",
        "intele_serviceId",
        "intele_username",
    ]
    assert modules["simulator"]["available"] is True


async def test_secrets_are_encrypted_at_rest_masked_on_read_and_kept_when_blank(
    harness: Harness,
) -> None:
    """A password is never shown or stored in clear; saving it blank or masked keeps it."""
    await harness.configure(
        module="original_intelecom",
        module_settings={"original_intelecom": {"username": "desk", "password": "hunter2-xyz"}},
    )
    shown = (await harness.get("/api/v1/settings")).json()
    assert shown["module_settings"]["original_intelecom"]["password"] == MASK
    assert "hunter2-xyz" not in raw_settings(harness)

    def stored_password() -> str:
        config = harness.service.settings.load()
        secret = config.module_settings["original_intelecom"]["password"]
        return str(secret.get_secret_value())

    for kept in ("", MASK, None):
        await harness.configure(
            module_settings={"original_intelecom": {"username": "desk2", "password": kept}}
        )
        assert stored_password() == "hunter2-xyz"
    await harness.configure(module_settings={"original_intelecom": {"password": "new-one"}})
    assert stored_password() == "new-one"
    assert (await harness.get("/api/v1/settings")).json()["module_settings"]["original_intelecom"][
        "username"
    ] == "desk2"


async def test_plugin_configuration_keys_fill_the_module_fields(harness: Harness) -> None:
    """The original products' key names set the module's fields; the stored text is masked."""
    plugin = (
        "# from Intelecom\nintele_serviceId = 4711\nintele_username = acme\nintele_password = p@ss"
    )
    await harness.configure(module="original_intelecom", plugin_configuration=plugin)
    shown = (await harness.get("/api/v1/settings")).json()
    fields = shown["module_settings"]["original_intelecom"]
    assert (fields["service_id"], fields["username"], fields["password"]) == ("4711", "acme", MASK)
    assert "p@ss" not in shown["plugin_configuration"]
    assert f"intele_password = {MASK}" in shown["plugin_configuration"]
    assert "p@ss" not in raw_settings(harness)
    # Saving the masked text back (as a form would) keeps the password.
    await harness.configure(plugin_configuration=shown["plugin_configuration"])
    secret = harness.service.settings.load().module_settings["original_intelecom"]["password"]
    assert secret.get_secret_value() == "p@ss"


async def test_plugin_configuration_errors_name_the_line_and_the_fix(harness: Harness) -> None:
    """Bad lines, placeholders, another module's keys and unknown keys are each explained."""
    plugin = "\n".join(
        [
            "intele_username = acme",
            "just some text",
            "intele_serviceId = [serviceId]",
            "pswin_username = other",
            "colour = blue",
        ]
    )
    response = await harness.put(
        "/api/v1/settings", {"module": "original_intelecom", "plugin_configuration": plugin}
    )
    assert response.status_code == 422
    messages = [
        f["message"]
        for f in response.json()["error"]["fields"]
        if f["field"] == "plugin_configuration"
    ]
    assert any("Line 2" in m and "key = value" in m for m in messages)
    assert any("Line 3" in m and "placeholder" in m for m in messages)
    assert any(
        "'pswin_username' belongs to module pswincom or original_pswincom" in m for m in messages
    )
    assert any("'colour' is not a setting" in m and "intele_username" in m for m in messages)


async def test_send_test_sends_now_and_the_message_is_then_delivered(harness: Harness) -> None:
    """Send test answers with the provider's verdict, and the message goes on to delivered."""
    response = await harness.post("/api/v1/settings/test", {"to": "+31612345678", "text": "Test"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] is True and body["status"] == "sent"
    assert body["provider_message_id"].startswith("SIM")
    delivered = await harness.wait_for(body["id"], "delivered")
    assert delivered["test"] is True


async def test_send_test_with_unsaved_settings_shows_the_refusal(harness: Harness) -> None:
    """Unsaved settings are tried without being saved; a refusal shows the provider's reason."""
    unsaved = {"module_settings": {"simulator": {"permanent_failure_rate": 1.0}}}
    response = await harness.post(
        "/api/v1/settings/test", {"to": "+31612345678", "text": "Test", "settings": unsaved}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] is False and body["status"] == "failed"
    assert body["error"]["code"] == "SIM-400" and "rejected" in body["error"]["message"]
    saved = (await harness.get("/api/v1/settings")).json()
    assert saved["module_settings"]["simulator"]["permanent_failure_rate"] == 0.0


async def test_send_test_refuses_bad_input_before_sending(harness: Harness) -> None:
    response = await harness.post("/api/v1/settings/test", {"to": "12", "text": "Test"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "to"


async def test_send_test_through_an_unknown_module_names_the_modules(harness: Harness) -> None:
    response = await harness.post(
        "/api/v1/settings/test",
        {"to": "+31612345678", "text": "Test", "settings": {"module": "kpn"}},
    )
    assert response.status_code == 422
    assert "original_pswincom" in errors_by_field(response.json())["module"]


async def test_send_test_without_credentials_says_what_to_enter(harness: Harness) -> None:
    """Original PsWinCom with no user name: refused before anything is sent, with the fix."""
    response = await harness.post(
        "/api/v1/settings/test",
        {"to": "+31612345678", "text": "Test", "settings": {"module": "original_pswincom"}},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["accepted"] is False
    assert body["error"]["kind"] == "AuthenticationError"
    assert "user name" in body["error"]["message"].lower()


async def test_secret_key_file_is_private_and_a_given_key_is_used_instead(tmp_path: Path) -> None:
    """The key file is created readable by its owner only; SMSDESK_SECRET_KEY replaces it."""
    async with running_service(tmp_path / "a", dispatcher=False):
        pass
    key_file = tmp_path / "a" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with running_service(tmp_path / "b", dispatcher=False, secret_key="passphrase") as h:
        await h.configure(
            module_settings={"original_pswincom": {"username": "u", "password": "pw-123"}}
        )
    assert not (tmp_path / "b" / "secret.key").exists()
    async with running_service(tmp_path / "b", dispatcher=False, secret_key="passphrase") as h:
        config = h.service.settings.load()
        assert config.module_settings["original_pswincom"]["password"].get_secret_value() == (
            "pw-123"
        )
