"""The SMS configuration's `spend` section: where outbound messages may go, and how many.

The allow-list holds ISO 3166 alpha-2 countries of recipients. Empty means the country (or the
countries) of the default country code; `"*"` means every country. The daily caps count
messages per UTC day: in total, per recipient country and per API key; `store.spend` charges
them where messages are stored. `SpendRefused` names the rule that refused a message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BaseModel, Field, field_validator

from smsdesk.domain.errors import DomainError

ALL_COUNTRIES = "*"
Rule = Literal["country_not_allowed", "daily_total", "daily_country", "api_key_daily"]
Cap = Annotated[int, Field(ge=0)]


class SpendSettings(BaseModel):
    """Which countries outbound messages may go to, and how many may be stored per UTC day."""

    model_config = {"extra": "forbid"}

    allowed_countries: list[str] = Field(
        default_factory=list,
        title="Allowed countries",
        description="Countries messages may be sent to, e.g. NL, BE; * allows every country. "
        "Empty allows the country of the default country code only.",
    )

    @field_validator("allowed_countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for item in value:
            code = item.strip().upper()
            if code != ALL_COUNTRIES and not (len(code) == 2 and code.isalpha()):
                raise ValueError(f"'{item}' is not a two-letter country code such as NL.")
            if code not in cleaned:
                cleaned.append(code)
        return cleaned

    daily_total: int | None = Field(
        None,
        ge=0,
        title="Messages per day",
        description="At most this many outbound messages per UTC day; empty: no cap.",
    )
    daily_per_country: dict[str, Cap] = Field(
        default_factory=dict,
        title="Messages per day per country",
        description="A cap per recipient country, e.g. GB = 500.",
    )
    daily_per_api_key: dict[str, Cap] = Field(
        default_factory=dict,
        title="Messages per day per API key",
        description="A cap per API key id.",
    )
    alert_percent: int = Field(
        80,
        ge=1,
        le=100,
        title="Alert at (percent)",
        description="The spend.threshold event fires once a day when a cap is this full.",
    )

    @field_validator("daily_per_country")
    @classmethod
    def _country_caps(cls, value: dict[str, int]) -> dict[str, int]:
        cleaned: dict[str, int] = {}
        for country, cap in value.items():
            code = country.strip().upper()
            if not (len(code) == 2 and code.isalpha()):
                raise ValueError(f"'{country}' is not a two-letter country code such as NL.")
            cleaned[code] = cap
        return cleaned

    @field_validator("daily_per_api_key")
    @classmethod
    def _key_caps(cls, value: dict[str, int]) -> dict[str, int]:
        return {key.strip(): cap for key, cap in value.items() if key.strip()}

    def allowed_regions(self, default_country_code: str) -> frozenset[str] | None:
        """The countries messages may go to; None means every country.

        An empty list means the country (or countries, e.g. +1) of the default country code;
        with no default country code either, nothing narrows the destinations.
        """
        if ALL_COUNTRIES in self.allowed_countries:
            return None
        if self.allowed_countries:
            return frozenset(self.allowed_countries)
        return _regions_of_code(default_country_code)

    def check_destination(self, country: str | None, default_country_code: str) -> None:
        """Refuse a recipient whose country is not on the allow-list."""
        allowed = self.allowed_regions(default_country_code)
        if allowed is not None and country not in allowed:
            raise SpendRefused("country_not_allowed", country=country or "?")


@lru_cache(maxsize=16)
def _regions_of_code(default_country_code: str) -> frozenset[str] | None:
    digits = default_country_code.strip().removeprefix("+")
    if not digits.isdecimal():
        return None
    return frozenset(phonenumbers.region_codes_for_country_code(int(digits)))


REFUSALS: dict[str, str] = {
    "country_not_allowed": "Messages to {country} are not allowed (rule country_not_allowed); "
    "add the country to the allowed countries in the spend controls.",
    "daily_total": "The daily cap of {cap} messages is reached ({used} today; rule "
    "daily_total); try again tomorrow (UTC) or raise the cap in the spend controls.",
    "daily_country": "The daily cap of {cap} messages to {country} is reached ({used} today; "
    "rule daily_country); try again tomorrow (UTC) or raise the cap in the spend controls.",
    "api_key_daily": "The daily cap of {cap} messages for this API key is reached ({used} "
    "today; rule api_key_daily); try again tomorrow (UTC) or raise the cap in the spend "
    "controls.",
}


class SpendRefused(DomainError):
    """A message the spend controls refuse: `rule` names the control, `cap` and `used` the
    day's limit and what was already used (None for the allow-list)."""

    field = "to"

    def __init__(
        self,
        rule: Rule,
        cap: int | None = None,
        used: int | None = None,
        *,
        country: str | None = None,
    ) -> None:
        self.rule = rule
        self.cap = cap
        self.used = used
        self.msgid = REFUSALS[rule]
        self.params: dict[str, Any] = {"cap": cap, "used": used, "country": country or ""}
        super().__init__(self.msgid.format(**self.params))
