"""Every module smsdesk knows, in the order the configuration screen lists them.

Adding a module means adding one file under `providers/` that defines `MODULE`, and one entry
here.
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
