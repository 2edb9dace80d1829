"""Faithful fakes of the providers' servers, for tests and for trying smsdesk without accounts.

`load_fake(module)` gives the fake class of a module; each lives in its own file.
"""

from __future__ import annotations

import importlib

from smsdesk.testing.fakes.base import FailureMode, FakeProvider, FakeSms, ReceivedRequest

__all__ = ["FAKES", "FailureMode", "FakeProvider", "FakeSms", "ReceivedRequest", "load_fake"]

FAKES = {
    "twilio": "twilio:TwilioFake",
    "linkmobility": "linkmobility:LinkMobilityFake",
    "pswincom": "pswincom:PsWinComFake",
    "cm": "cm:CmFake",
    "txtlocal": "txtlocal:TxtlocalFake",
    "smsteknik": "smsteknik:SmsTeknikFake",
    "compaya": "compaya:CompayaFake",
    "intelecom": "intelecom:IntelecomFake",
}


def load_fake(module: str) -> type[FakeProvider]:
    """The fake server class for `module`."""
    path, _, name = FAKES[module].partition(":")
    fake: type[FakeProvider] = getattr(
        importlib.import_module(f"smsdesk.testing.fakes.{path}"), name
    )
    return fake
