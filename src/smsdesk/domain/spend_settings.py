"""The SMS configuration's `spend` section: where outbound messages may go.

The allow-list holds ISO 3166 alpha-2 countries of recipients. Empty means the country (or the
countries) of the default country code; `"*"` means every country. The daily caps are rows of
their own (`spend_caps`), read where a message is stored.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

ALL_COUNTRIES = "*"


class SpendSettings(BaseModel):
    """Which countries outbound messages may go to."""

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
