"""The SMPP module's settings: where the SMSC is, how to bind, how to encode and split texts.

A pydantic model like every module's; the configuration form and API are built from its fields.
"""

from __future__ import annotations

import enum

from pydantic import Field, SecretStr

from smsdesk.domain.sms import ModuleSettings
from smsdesk.providers.smpp.codec import DC_GSM7, LongMessages
from smsdesk.providers.smpp.receipts import ReceiptIdBase

__all__ = ["BindMode", "LongMessages", "ReceiptIdBase", "SmppSettings"]


class BindMode(enum.StrEnum):
    """One session both ways, or one to send and one to receive."""

    TRANSCEIVER = "transceiver"
    TRANSMITTER_RECEIVER = "transmitter+receiver"


class SmppSettings(ModuleSettings):
    """Where the SMSC is, how to bind, and how to encode and split messages."""

    host: str = Field("", title="Host", description="SMSC host name or address.")
    port: int = Field(2775, ge=1, le=65535, title="Port", description="SMSC TCP port.")
    system_id: str = Field(
        "", max_length=15, title="System ID", description="Account name given by the SMSC."
    )
    password: SecretStr = Field(
        SecretStr(""), title="Password", description="Account password (at most 8 characters)."
    )
    system_type: str = Field(
        "", max_length=12, title="System type", description="Left empty unless the SMSC asks."
    )
    bind_mode: BindMode = Field(
        BindMode.TRANSCEIVER,
        title="Bind mode",
        description="One transceiver session, or a transmitter and a receiver session.",
    )
    data_coding: int = Field(
        DC_GSM7,
        title="Default data coding",
        description="For texts that fit GSM-7: 0 (GSM 03.38 default alphabet) or 3 (Latin-1). "
        "Other texts always go as UCS-2 (8).",
    )
    gsm7_packed: bool = Field(
        False,
        title="Packed GSM-7",
        description="Pack GSM-7 septets (8 characters in 7 bytes); most SMSCs expect unpacked.",
    )
    binds: int = Field(
        1,
        ge=1,
        le=64,
        title="Binds",
        description="How many processes of the installation may be bound to the SMSC at once "
        "(SMSCs cap the binds of an account); the others wait for a free slot.",
    )
    window_size: int = Field(
        10,
        ge=1,
        le=1000,
        title="Window size",
        description="How many submit_sm may await their answer at once.",
    )
    enquire_link_interval: float = Field(
        30.0,
        gt=0,
        le=3600,
        title="Enquire link interval (seconds)",
        description="How often the session is checked when nothing else is sent.",
    )
    reconnect_backoff: float = Field(
        1.0,
        gt=0,
        le=600,
        title="Reconnect backoff (seconds)",
        description="First wait before binding again; doubles up to 60 s while binds fail.",
    )
    throttle_backoff: float = Field(
        1.0,
        ge=0,
        le=3600,
        title="Throttle backoff (seconds)",
        description="How long to wait after the SMSC answers 'throttled' or 'queue full'.",
    )
    tls: bool = Field(False, title="TLS", description="Connect with TLS.")
    timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        title="Timeout (seconds)",
        description="How long to wait for a bind or a submit_sm answer.",
    )
    delivery_report: bool = Field(
        True,
        title="Delivery report",
        description="Ask for delivery receipts (registered_delivery 1).",
    )
    receipt_id_base: ReceiptIdBase = Field(
        ReceiptIdBase.AUTO,
        title="Receipt id base",
        description="How receipts write the message id: as_is (as in submit_sm_resp), decimal "
        "(submit_sm_resp hex, receipts decimal), hex (the reverse), or auto (learnt from the ids).",
    )
    long_messages: LongMessages = Field(
        LongMessages.UDH,
        title="Long messages",
        description="udh: concatenation header with 8-bit reference; sar: sar_* TLVs; "
        "payload: the whole text in one message_payload TLV.",
    )

    def wants_delivery_reports(self) -> bool:
        """The module's delivery-report switch."""
        return self.delivery_report
