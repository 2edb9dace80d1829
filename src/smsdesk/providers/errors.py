"""What a provider's answer codes mean, declared as one table per module.

Every module meets the same question: the provider answered with an HTTP status or a code of
its own, so which error is it? The error class decides what the dispatcher does next (see
`providers.base`), the text is what the admin reads. A module writes its codes down as an
`ErrorTable` beside the protocol it describes, and `ErrorTable.error` builds the error, so a
new code is one line rather than another branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeAlias

from smsdesk.providers.base import ProviderError, RateLimitedError

Code: TypeAlias = str | int
Codes: TypeAlias = Code | range | tuple[Code, ...]


@dataclass(frozen=True, slots=True)
class Meaning:
    """One code's error class and text (a `str.format` template of the values a module gives).

    `code` is what the error carries when that is not the code looked up (e.g. Twilio's 20003
    for an HTTP 401); `retry_after` is the pause a RateLimitedError asks for when the answer
    gave none. `not_taken` and `connection_level` mark how certain the failure is (see
    `providers.base`); None keeps the error class's default.
    """

    kind: type[ProviderError]
    text: str
    code: str | None = None
    retry_after: float | None = None
    not_taken: bool | None = None
    connection_level: bool | None = None

    def error(self, code: str, retry_after: float | None = None, **values: object) -> ProviderError:
        """The error, its text filled in with `code` and `values`."""
        carried = self.code or code
        text = self.text.format(code=carried, **values)
        kind = self.kind
        certainty = {"not_taken": self.not_taken, "connection_level": self.connection_level}
        if issubclass(kind, RateLimitedError):
            pause = self.retry_after if retry_after is None else retry_after
            return kind(text, code=carried, retry_after=pause, **certainty)
        return kind(text, code=carried, **certainty)


def account_level(meaning: Meaning) -> Meaning:
    """The same meaning, marked as a refusal of the account before it took the message.

    For the account's permanent problems (no credit, no route or gate, a sender the account may
    not use): the message may go out over another connection.
    """
    return replace(meaning, not_taken=True, connection_level=True)


class ErrorTable:
    """A module's codes and what they mean; looked up exactly, then by range, then by prefix.

    `code` formats the code an error carries from the key looked up (HTTP tables use
    "http-{key}"). `said` frames the provider's own reason for the `{said}` field of the texts,
    and `unsaid` stands in when the provider gave none.
    """

    def __init__(
        self,
        meanings: Mapping[Codes, Meaning],
        *,
        prefixes: Mapping[str, Meaning] | None = None,
        default: Meaning | None = None,
        code: str = "{key}",
        said: str = "{}",
        unsaid: str = "",
    ) -> None:
        self._exact: dict[str, Meaning] = {}
        self._ranges: list[tuple[range, Meaning]] = []
        for codes, meaning in meanings.items():
            if isinstance(codes, range):
                self._ranges.append((codes, meaning))
                continue
            for one in codes if isinstance(codes, tuple) else (codes,):
                self._exact[str(one)] = meaning
        # Longest first, so "invalid phonenumber (e164)" wins over "invalid phonenumber".
        self._prefixes = sorted((prefixes or {}).items(), key=lambda item: -len(item[0]))
        self._default = default
        self._code = code
        self._said = said
        self._unsaid = unsaid

    def find(self, key: Code) -> Meaning | None:
        """What `key` means, or None when the table names it nowhere and has no default."""
        text = str(key)
        if text in self._exact:
            return self._exact[text]
        number = int(text) if text.isdigit() else None
        for codes, meaning in self._ranges:
            if number is not None and number in codes:
                return meaning
        for prefix, meaning in self._prefixes:
            if text.startswith(prefix):
                return meaning
        return self._default

    def error(
        self,
        key: Code,
        *,
        reason: str = "",
        code: str | None = None,
        retry_after: float | None = None,
        **values: object,
    ) -> ProviderError:
        """The error `key` stands for; `reason` is the provider's own words, framed as `{said}`.

        `code` overrides the code the error carries; `values` fill in the rest of the text.
        """
        meaning = self.find(key)
        if meaning is None:
            raise LookupError(f"The error table has no meaning for {key!r}.")
        said = self._said.format(reason) if reason else self._unsaid
        carried = code if code is not None else self._code.format(key=key)
        fields: dict[str, object] = {"said": said, "reason": reason, "key": key, **values}
        return meaning.error(carried, retry_after, **fields)
