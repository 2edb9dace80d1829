"""Reading providers' callbacks and times: the helpers every HTTP module shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smsdesk.providers.base import CallbackRequest
from smsdesk.providers.callbacks import (
    charset,
    folded,
    form_fields,
    header,
    json_body,
    query_and_form,
    stable_id,
    xml_fields,
    xml_root,
    xml_text,
)
from smsdesk.providers.timestamps import (
    http_date,
    iso_time,
    local_time,
    named_zone,
    unix_seconds,
)

CET = timezone(timedelta(hours=1))


def callback(body: bytes = b"", content_type: str = "", **query: str) -> CallbackRequest:
    headers = {"Content-Type": content_type} if content_type else {}
    return CallbackRequest("POST", "http://x/cb", headers, query, body)


def test_headers_are_found_whatever_their_case() -> None:
    request = callback(content_type="application/x-www-form-urlencoded; charset=ISO-8859-1")

    assert header(request, "content-type").startswith("application/")
    assert charset(request, "utf-8") == "ISO-8859-1"
    assert charset(callback(), "iso-8859-1") == "iso-8859-1"
    assert header(request, "x-missing") == ""


def test_form_fields_read_the_providers_charset_over_the_query() -> None:
    request = callback(b"TXT=Bl%e5b%e6r&REF=1", REF="query", ID="7")

    assert form_fields(request, "iso-8859-1") == {"TXT": "Blåbær", "REF": "1", "ID": "7"}


def test_form_fields_fall_back_to_the_next_charset() -> None:
    assert form_fields(callback(b"text=%C3%A5"), "utf-8", "cp1252") == {"text": "å"}
    assert form_fields(callback(b"text=%E5"), "utf-8", "cp1252") == {"text": "å"}


def test_a_form_that_cannot_be_read_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="The form cannot be decoded as utf-8"):
        form_fields(callback(b"\xff=1"), "utf-8")
    with pytest.raises(ValueError, match="no-such-charset"):
        form_fields(callback(b"a=1"), "no-such-charset")
    with pytest.raises(ValueError):
        form_fields(callback(b"not a form"), "utf-8", strict=True)
    assert form_fields(callback(b"  \n"), "utf-8", strict=True) == {}


def test_query_and_form_takes_the_forms_value() -> None:
    request = CallbackRequest("POST", "http://x/", {}, {"a": "q", "b": "q"}, b"", {"a": "f"})

    assert query_and_form(request) == {"a": "f", "b": "q"}


def test_json_and_xml_bodies() -> None:
    assert json_body(b'{"a": 1}', "bad: {}") == {"a": 1}
    with pytest.raises(ValueError, match=r"^bad: "):
        json_body(b"{", "bad: {}")
    root = xml_root(b"<MSG><ID> 1 </ID><x:REF xmlns:x='urn:x'>R</x:REF></MSG>", "bad: {}")
    assert xml_text(root, "ID") == "1" and xml_text(root, "NONE") == ""
    assert xml_fields(root) == {"ID": "1", "REF": "R"}


@pytest.mark.parametrize("body", [b"<a>", b'<!DOCTYPE x [<!ENTITY e "e">]><a>&e;</a>', b"\x00"])
def test_unreadable_or_unsafe_xml_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"^The body is not XML: "):
        xml_root(body, "The body is not XML: {}")


def test_folded_names() -> None:
    assert folded({"ErrorCode": 1}) == {"errorcode": 1}
    assert folded({"ref": "x"}, "upper") == {"REF": "x"}


def test_stable_ids_depend_on_every_part_and_nothing_else() -> None:
    first = stable_id("p-", "a", "b")

    assert first == stable_id("p-", "a", "b")
    assert first != stable_id("p-", "a", "c") != stable_id("p-", "ab")
    assert first.startswith("p-") and len(first) == 2 + 32
    assert len(stable_id("", "a", length=24, separator="\n")) == 24


def test_times_in_the_layouts_providers_send() -> None:
    assert (
        local_time("2024-01-02 03:04:05", "%Y-%m-%d %H:%M:%S")
        == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    )
    assert (
        local_time(" 2401020304 ", "%Y.%m.%d", "%y%m%d%H%M", zone=CET)
        == datetime(2024, 1, 2, 3, 4, tzinfo=CET).timestamp()
    )
    assert local_time("yesterday", "%Y") is None
    assert iso_time("2015-11-19T09:37:00Z") == datetime(2015, 11, 19, 9, 37, tzinfo=UTC).timestamp()
    assert iso_time("2015-11-19 09:37") == datetime(2015, 11, 19, 9, 37, tzinfo=UTC).timestamp()
    assert iso_time(None) is None and iso_time(" ") is None and iso_time("x") is None
    assert (
        http_date("Wed, 21 Oct 2015 07:28:00 GMT")
        == datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    )
    assert http_date("soon") is None
    assert unix_seconds("1700000000") == 1700000000.0 and unix_seconds("-1") is None


def test_a_missing_zone_database_falls_back() -> None:
    assert named_zone("No/Such_Zone") is None
    assert named_zone("No/Such_Zone", CET) is CET
    assert named_zone("Europe/Oslo") is not None
