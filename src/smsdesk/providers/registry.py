"""Every module smsdesk knows, as data: name, title, description, settings model, provider.

Adding a module means adding one file under `providers/` and one entry here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from smsdesk.providers.base import ModuleSettings, Provider
from smsdesk.providers.intelecom import OriginalIntelecomSettings
from smsdesk.providers.pswincom import OriginalPsWinComSettings
from smsdesk.providers.simulator import SimulatorProvider, SimulatorSettings


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """What the configuration screen and the dispatcher need to know about a module."""

    name: str
    title: str
    description: str
    settings_model: type[ModuleSettings]
    provider_class: type[Provider] | None

    @property
    def available(self) -> bool:
        """Whether the module can send in this version (some exist only as configuration)."""
        return self.provider_class is not None


_MODULES = (
    ModuleInfo(
        "simulator",
        "Simulator",
        "Sends nothing real; delivers after a delay and can inject faults. For trying and testing.",
        SimulatorSettings,
        SimulatorProvider,
    ),
    ModuleInfo(
        "original_intelecom",
        "Original Intelecom",
        "Intelecom SMS gateway, by web service or by e-mail (on-site installations).",
        OriginalIntelecomSettings,
        None,
    ),
    ModuleInfo(
        "original_pswincom",
        "Original PsWinCom",
        "PSWinCom (LINK Mobility) XML gateway (on-site installations).",
        OriginalPsWinComSettings,
        None,
    ),
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
