"""Every module that speaks HTTP has a fake of its provider, and so a row in the contract suite.

Each provider class declares how it reaches its provider (`Provider.transport`). The contract
suite and the end-to-end module test run once per entry of `smsdesk.testing.fakes.FAKES`, so an
HTTP module without a fake there would never meet its provider's behaviour in a test, unless it
says why (`Provider.without_fake`, e.g. Kannel runs against a real Kannel). Modules that do not
speak HTTP say there why they have no fake.
"""

from __future__ import annotations

from smsdesk.providers.base import ModuleInfo, Transport
from smsdesk.providers.registry import all_modules, get_module
from smsdesk.testing.fakes import FAKES, load_fake


def sending_modules() -> list[ModuleInfo]:
    return [module for module in all_modules() if module.provider_class is not None]


def test_every_module_declares_how_it_reaches_its_provider() -> None:
    undeclared = [module.name for module in sending_modules() if module.transport is None]

    assert not undeclared, (
        f"Declare `transport` (a providers.base.Transport) on the provider class of {undeclared}."
    )


def test_every_http_module_has_a_fake_or_says_why_not() -> None:
    faked = {get_module(name).provider_class for name in FAKES}
    missing = [
        module.name
        for module in sending_modules()
        if module.transport is Transport.HTTP
        and module.provider_class not in faked
        and not (module.provider_class and module.provider_class.without_fake)
    ]

    assert not missing, (
        f"{missing} speak HTTP but have no fake: add one in smsdesk/testing/fakes/ and its "
        "entry in FAKES (the contract suite then runs the module against it), or say in "
        "`without_fake` why the module is tested another way."
    )


def test_modules_that_do_not_speak_http_say_how_they_are_tested() -> None:
    silent = [
        module.name
        for module in sending_modules()
        if module.transport not in (None, Transport.HTTP)
        and not (module.provider_class and module.provider_class.without_fake)
    ]

    assert not silent, f"Say in `without_fake` why {silent} have no fake provider."


def test_every_fake_is_of_an_http_module_with_that_name() -> None:
    for name in FAKES:
        assert get_module(name).transport is Transport.HTTP, name
        assert load_fake(name).module == name
