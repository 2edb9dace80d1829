"""Reading what providers post to our webhooks: headers, forms, JSON and XML bodies.

Every HTTP module receives reports and inbound SMS as a `CallbackRequest` and has to pull its
fields out of a query string, a form in the provider's charset, a JSON object or an XML
document. These readers do that one way for all; a body that cannot be read raises ValueError,
which the webhook answers with a 400. `stable_id` names an inbound message whose provider
gives it no id of its own, so the same callback posted twice is stored once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree

from smsdesk.providers.base import CallbackRequest

_CHARSET = re.compile(r"charset=([\w-]+)", re.I)


def header(request: CallbackRequest, name: str) -> str:
    """A header's value, whatever case its name was sent in; '' when absent."""
    name = name.lower()
    return next((value for key, value in request.headers.items() if key.lower() == name), "")


def charset(request: CallbackRequest, default: str) -> str:
    """The charset the Content-Type names, or `default`."""
    match = _CHARSET.search(header(request, "content-type"))
    return match.group(1) if match else default


def query_and_form(request: CallbackRequest) -> dict[str, str]:
    """The URL's parameters with the form's fields over them (as the web layer read the form)."""
    return {**request.query, **request.form}


def form_fields(
    request: CallbackRequest,
    *charsets: str,
    strict: bool = False,
    error: str = "The form cannot be decoded as {0}: {1}.",
) -> dict[str, str]:
    """The URL's parameters with the body's form fields over them, read in the provider's charset.

    For providers that post Latin-1 or Windows-1252 forms, which the web layer's UTF-8 reading
    would garble: the body is read in the first of `charsets` it fits, and so are its
    %-escapes (in the last charset, escapes that do not fit are replaced). `strict` refuses a
    body that is not a form. When no charset fits, ValueError with `error` ({0} the charsets,
    {1} the reason).
    """
    fields = dict(request.query)
    failure: Exception | None = None
    for name in charsets:
        escapes = "replace" if name == charsets[-1] else "strict"
        try:
            text = request.body.decode(name).strip()
            pairs = (
                parse_qsl(
                    text,
                    keep_blank_values=True,
                    strict_parsing=strict,
                    encoding=name,
                    errors=escapes,
                )
                if text
                else []
            )
        except (LookupError, UnicodeDecodeError) as exc:
            failure = exc
            continue
        fields.update(pairs)
        return fields
    raise ValueError(error.format(" or ".join(charsets), failure))


def folded(values: Mapping[str, Any], case: Literal["lower", "upper"] = "lower") -> dict[str, Any]:
    """The same fields with their names in one case, so 'errorCode' and 'ErrorCode' read alike."""
    return {
        (str(key).lower() if case == "lower" else str(key).upper()): value
        for key, value in values.items()
    }


def json_body(body: bytes | str, error: str) -> Any:
    """The JSON a callback carries; else ValueError with `error` (its {} takes the reason)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(error.format(exc)) from None


def xml_root(body: bytes | str, error: str) -> Element:
    """The root of an XML body, read safely (no entities, no external references).

    A body that is not well-formed XML, or tries an entity trick, raises ValueError with
    `error`, whose {} takes the parser's reason.
    """
    try:
        root: Element = ElementTree.fromstring(body)
    except (ParseError, ValueError) as exc:  # defusedxml's refusals are ValueErrors
        raise ValueError(error.format(exc)) from None
    return root


def xml_text(element: Element, path: str) -> str:
    """The stripped text of the first element at `path`; '' when there is none."""
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def local_name(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rpartition("}")[2]


def xml_fields(element: Element) -> dict[str, str]:
    """An element's children as fields: tag without namespace -> stripped text."""
    return {local_name(child.tag): (child.text or "").strip() for child in element}


def stable_id(prefix: str, *parts: str, length: int = 32, separator: str = "\x1f") -> str:
    """An id derived from a message's content, for providers that send none.

    The same parts always give the same id, so a callback the provider repeats is stored once.
    """
    digest = hashlib.sha256(separator.join(parts).encode()).hexdigest()
    return prefix + digest[:length]
