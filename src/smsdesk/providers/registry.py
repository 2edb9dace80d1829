"""Every module smsdesk knows, in the order the configuration screen lists them.

Adding a module touches:

- its module under `providers/` (a file, or a package like `smpp/`): a settings model (an HTTP
  module's extends `http.HttpModuleSettings`, which brings the base URL and timeout; legacy keys
  of the original products go in `plugin_keys`), a `Provider` subclass declaring its
  `transport`, and `MODULE = ModuleInfo(...)`. HTTP modules send with `http.request`, write
  their codes down as `errors.ErrorTable`s and read callbacks with `callbacks`, `timestamps`
  and `numbers`; the webhook routes are the same for every module;
- its entry in `_MODULES` below;
- for an HTTP module, a fake of its provider's server in `smsdesk/testing/fakes/<name>.py`
  (tested in `tests/fakes/`) and its entry in `FAKES` there: the contract suite
  (`tests/contract/`) and the end-to-end module test then run it. `tests/contract/
  test_conformance.py` fails for an HTTP module with neither a fake nor a `without_fake`
  reason, and for any module that declares no `transport`;
- its own tests in `tests/providers/test_<name>.py`;
- the Dutch of its title, description and settings fields in
  `web/locale/nl/LC_MESSAGES/settings.po` (the settings form is drawn from the settings
  model's JSON schema; `tests/unit/test_dutch_catalogue.py` fails for a missing text);
- the Modules table of README.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from smsdesk.providers import (
    cm,
    compaya,
    email_gateway,
    intelecom,
    kannel,
    linkmobility,
    pswincom,
    simulator,
    smpp,
    smsteknik,
    twilio,
    txtlocal,
)
from smsdesk.providers.base import ModuleInfo

__all__ = ["ModuleInfo", "UnknownModule", "all_modules", "get_module"]

_MODULES = (
    simulator.MODULE,
    twilio.MODULE,
    linkmobility.MODULE,
    pswincom.MODULE,
    cm.MODULE,
    txtlocal.MODULE,
    smsteknik.MODULE,
    compaya.MODULE,
    intelecom.MODULE,
    kannel.MODULE,
    smpp.MODULE,
    email_gateway.MODULE,
    intelecom.ORIGINAL_MODULE,
    pswincom.ORIGINAL_MODULE,
)

_BY_NAME = {module.name: module for module in _MODULES}


class UnknownModule(LookupError):
    """A module name that smsdesk does not have."""


def get_module(name: str) -> ModuleInfo:
    """The module called `name`, or UnknownModule listing the names that exist."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME))
        raise UnknownModule(f"There is no module '{name}'. Choose one of: {known}.") from None


def all_modules() -> Iterator[ModuleInfo]:
    """Every module, in the order the configuration screen lists them."""
    return iter(_MODULES)
