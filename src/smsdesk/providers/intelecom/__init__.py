"""Intelecom / Puzzel SMS Gateway over REST: batched sends, delivery reports, inbound SMS.

Wire facts come from PuzzelSolutions/SMS (sections/common.md, about.md, interfaces/rest.md,
interfaces/http-get.md). Where those pages are silent, the choice made here is marked
UNCONFIRMED:

- Host: the pages show `smsgw.intele.com`; Puzzel's own clients (Puzzel.SmsGateway.Client,
  smsgw-client-python) default to `https://smsgw.puzzel.com`, which is used here (UNCONFIRMED).
- Throttling has no documented answer; an HTTP 429 is read as "slow down" (UNCONFIRMED).
- Status 24 (held by the spam filter until someone approves it) counts as accepted: the gateway
  keeps the message, so sending it again would make a second copy.
- Status 25 (duplicate) counts as accepted with the id it carries; without one the message is
  *sent* with no provider id, so its delivery report cannot be matched (UNCONFIRMED).
- `intele_NoSmsSession` (UNCONFIRMED): read as "do not start an SMS session per message".
- Inbound timestamps carry no zone and are read as Norwegian time (UNCONFIRMED).

*Original Intelecom* with *Use web service* off sends each SMS by e-mail (interfaces/smtp.md):
to `<recipient>-<serviceid>@smsmail.intele.com`, the body is the SMS, the subject is ignored
(so it is left empty: the gateway can be set to append it), at most 918 characters, no message
id or status comes back, and the gateway accepts mail only from IP addresses Puzzel was given.
The SMTP server and the address template come from the *E-mail to SMS* module's settings (the
screen has only the original's fields). The recipient's form in the address is UNCONFIRMED:
digits without '+' by default ({number}); {e164} gives '+'.

Send answers map to the error tree of `smsdesk.providers.base`::

    1 OK, 24 held for approval, 25 duplicate   accepted
    2 ACCESS_ERROR, 3 ILLEGAL_ACTION,
      4 ILLEGAL_SERVICE                        AuthenticationError (the settings are wrong)
    5 SYNTAX_ERROR                             PermanentError (this message can never go)
    6 INTERNAL_ERROR, unknown codes            TemporaryError
"""

from smsdesk.providers.intelecom.provider import (
    MODULE,
    ORIGINAL_MODULE,
    WEB_SERVICE_OFF,
    IntelecomProvider,
    OriginalIntelecomProvider,
)
from smsdesk.providers.intelecom.settings import (
    IntelecomSettings,
    OriginalIntelecomSettings,
)
from smsdesk.providers.intelecom.wire import to_e164, validity_code, validity_seconds

__all__ = [
    "MODULE",
    "ORIGINAL_MODULE",
    "WEB_SERVICE_OFF",
    "IntelecomProvider",
    "IntelecomSettings",
    "OriginalIntelecomProvider",
    "OriginalIntelecomSettings",
    "to_e164",
    "validity_code",
    "validity_seconds",
]
