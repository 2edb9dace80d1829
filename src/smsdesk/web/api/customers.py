"""Customers and their mobile numbers: /api/v1/customers (changes need an admin key).

Numbers may be written as customers write them; without a country code the SMS
configuration's default country code is added. A number belongs to at most one customer.

`DELETE /api/v1/customers/{id}?erase=true` erases a customer with everything held about them
(`customers.erasure`); `GET .../{id}/export` and `GET /api/v1/numbers/{number}/export` answer
everything held about a customer or a number (`customers.export`). Both need an admin key and
are recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk import customers
from smsdesk.customers import erasure, export
from smsdesk.customers.csv_import import CsvFormatError, import_customers
from smsdesk.domain.times import iso
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
numbers_router = APIRouter(prefix="/api/v1/numbers", tags=["customers"])


class NewCustomer(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(..., max_length=1000, examples=["Ada Lovelace"])
    numbers: list[str] = Field(
        ...,
        min_length=1,
        max_length=100,
        description="Mobile numbers; without country code the default country code is added.",
        examples=[["+31612345678"]],
    )
    language: str | None = Field(
        None, max_length=10, description="e.g. en, nl; default: the inbound SMS language."
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Tags to choose mailing audiences by, e.g. vip (stored in lower case).",
        examples=[["vip"]],
    )


class CustomerPatch(BaseModel):
    model_config = {"extra": "forbid"}

    name: str | None = Field(None, max_length=1000)
    language: str | None = Field(None, max_length=10)
    numbers: list[str] | None = Field(
        None, min_length=1, max_length=100, description="Replaces all of the customer's numbers."
    )
    tags: list[str] | None = Field(
        None, max_length=100, description="Replaces all of the customer's tags ([] removes all)."
    )


def customer_out(customer: customers.Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "language": customer.language,
        "numbers": list(customer.numbers),
        "tags": list(customer.tags),
        "created_from_sms": customer.created_from_sms,
        "created_at": iso(customer.created_at),
        "updated_at": iso(customer.updated_at),
    }


@contextmanager
def _answers() -> Iterator[None]:
    """Customer errors as API errors: 404 unknown, 409 number taken or customer in use."""
    try:
        yield
    except customers.CustomerNotFound as exc:
        raise ApiError(404, "not_found", exc.message) from None
    except customers.NumberTaken as exc:
        field = [{"field": exc.field, "message": exc.message}]
        raise ApiError(409, "number_taken", exc.message, field) from None
    except customers.CustomerInUse as exc:
        raise ApiError(409, "customer_in_use", exc.message) from None
    except erasure.MessageBeingSent as exc:
        raise ApiError(409, "message_being_sent", exc.message) from None


@router.post("", status_code=201, summary="Add a customer")
def create_customer(body: NewCustomer, request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    with _answers():
        customer = customers.create_customer(
            service_of(request),
            name=body.name,
            numbers=body.numbers,
            language=body.language,
            tags=body.tags,
        )
    return Json(customer_out(customer), 201)


@router.get("", summary="List customers, newest first")
def list_customers(
    request: Request,
    _: ApiKey = Depends(api_key),
    search: str | None = Query(
        None, max_length=200, description="Part of a name or number, or a number as typed."
    ),
    cursor: str | None = Query(None, description="The next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=1000),
) -> Json:
    found = customers.search_customers(service_of(request), search, before=cursor, limit=limit + 1)
    page = found[:limit]
    next_cursor = page[-1].id if len(found) > limit else None
    return Json({"customers": [customer_out(c) for c in page], "next_cursor": next_cursor})


@router.get("/tags", summary="Every customer tag in use, with how many customers carry it")
def list_tags(request: Request, _: ApiKey = Depends(api_key)) -> Json:
    found = customers.tag_counts(service_of(request))
    return Json({"tags": [{"tag": tag, "customers": count} for tag, count in found]})


@router.get("/by-number/{number}", summary="The customer a mobile number belongs to")
def customer_by_number(number: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    found = customers.find_by_number(service_of(request), number)
    if found is None:
        raise ApiError(404, "not_found", f"No customer has the number {number}.")
    return Json(customer_out(found))


@router.get("/{customer_id}", summary="A customer with its numbers")
def get_customer(customer_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    with _answers():
        return Json(customer_out(customers.get_customer(service_of(request), customer_id)))


@router.patch("/{customer_id}", summary="Change a customer's name, language, numbers or tags")
def update_customer(
    customer_id: str, body: CustomerPatch, request: Request, _: ApiKey = Depends(admin_key)
) -> Json:
    with _answers():
        customer = customers.update_customer(
            service_of(request),
            customer_id,
            name=body.name,
            language=body.language,
            numbers=body.numbers,
            tags=body.tags,
        )
    return Json(customer_out(customer))


@router.delete(
    "/{customer_id}",
    summary="Delete a customer without requests, or erase one with everything held about them",
)
def delete_customer(
    customer_id: str,
    request: Request,
    key: ApiKey = Depends(admin_key),
    erase: bool = Query(
        False,
        description="Erase the customer with their numbers, requests, messages and inbound SMS "
        "(an opt-out is kept as a keyed hash of the number); answers the count of each kind.",
    ),
) -> Response:
    service = service_of(request)
    with _answers():
        if erase:
            erased = erasure.erase_customer(service, customer_id, key_actor(request, key))
            return Json({"customer_id": customer_id, "erased": erased.counts})
        customers.delete_customer(service, customer_id)
    return Response(status_code=204)


@router.get("/{customer_id}/export", summary="Everything held about a customer, as JSON")
def export_customer(customer_id: str, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    with _answers():
        document = export.export_customer(service_of(request), customer_id, key_actor(request, key))
    return Json(document)


@numbers_router.get("/{number}/export", summary="Everything held about a mobile number, as JSON")
def export_number(number: str, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    """The customer holding the number with all their data, or what is held about the number."""
    document = export.export_number(service_of(request), number, key_actor(request, key))
    if export.is_empty(document):
        raise ApiError(404, "not_found", f"Nothing is held about the number {number}.")
    return Json(document)


def _file_from_multipart(content_type: str, body: bytes) -> bytes:
    """The first file (or the field named `file`) of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts = list(message.iter_parts()) if message.is_multipart() else []
    chosen = next((p for p in parts if p.get_filename()), None) or next(
        (p for p in parts if p.get_param("name", header="content-disposition") == "file"), None
    )
    payload = chosen.get_payload(decode=True) if chosen is not None else None
    if not isinstance(payload, bytes):
        raise CsvFormatError("The form has no file; send the CSV file in a field named 'file'.")
    return payload


@router.post("/import", summary="Import customers from a CSV file")
async def import_csv(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """Send the CSV as the body (text/csv) or as a form's file; one result per row.

    Rows whose numbers belong to a customer update that customer; bad rows are skipped with
    their line number and the reason, and never stop the rest.
    """
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        body = _file_from_multipart(content_type, body)
    report = await run_in_threadpool(import_customers, service_of(request), body)
    return Json(report.as_dict())
