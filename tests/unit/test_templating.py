"""Rendering reply templates: variables, prompts, literal braces, and what is refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.templating import (
    VARIABLES,
    InvalidTemplate,
    MissingVariable,
    UnknownVariable,
    check_body,
    prompts,
    render,
)

CONTEXT = {
    "customer.name": "Ada Lovelace",
    "customer.number": "+31612345678",
    "request.id": "01REQ",
    "agent.name": "sam",
}


@pytest.mark.parametrize("name", VARIABLES)
def test_each_variable_is_filled_from_its_value(name: str) -> None:
    """Every variable an administrator may use is replaced by its value."""
    assert render(f"<{{{name}}}>", CONTEXT) == f"<{CONTEXT[name]}>"


def test_prompts_are_listed_once_in_order_and_filled() -> None:
    """The reply box asks each question once, in the order the text uses them."""
    body = "Order {prompt:order number} ({prompt: order   number }) due {prompt:date}"
    assert prompts(body) == ("order number", "date")
    values = {"prompt:order number": "A-1", "prompt:date": "Monday"}
    assert render(body, values) == "Order A-1 (A-1) due Monday"


def test_double_braces_are_literal_braces() -> None:
    """{{ and }} give { and }, also right around a variable."""
    assert render("{{customer.name}} {{{customer.name}}}", CONTEXT) == (
        "{customer.name} {Ada Lovelace}"
    )


@pytest.mark.parametrize("missing", ["", "   ", None])
def test_a_variable_without_a_value_is_refused_naming_it(missing: str | None) -> None:
    """An unknown customer's name is never sent as '{customer.name}' or as nothing."""
    with pytest.raises(MissingVariable) as refused:
        render("Dear {customer.name},", {**CONTEXT, "customer.name": missing})
    assert refused.value.name == "customer.name"
    assert "{customer.name}" in refused.value.message


def test_an_unfilled_prompt_is_refused_naming_the_question() -> None:
    with pytest.raises(MissingVariable) as refused:
        render("Order {prompt:order number}", CONTEXT)
    assert refused.value.name == "prompt:order number"
    assert "'order number'" in refused.value.message


@pytest.mark.parametrize(
    ("body", "position"),
    [("Hi {customer.nam}", 4), ("{Customer.Name}", 1), ("x {}", 3), ("Ref {request}", 5)],
)
def test_unknown_variables_are_refused_when_saved_with_name_and_position(
    body: str, position: int
) -> None:
    with pytest.raises(UnknownVariable) as refused:
        check_body(body)
    assert refused.value.position == position
    assert f"position {position}" in refused.value.message
    assert "{" + refused.value.name + "}" in refused.value.message


@pytest.mark.parametrize(
    ("body", "position"),
    [("a } b", 3), ("a { b", 3), ("{customer.name", 1), ("{a {customer.name}", 1)],
)
def test_stray_braces_are_refused_with_their_position(body: str, position: int) -> None:
    with pytest.raises(InvalidTemplate) as refused:
        check_body(body)
    assert refused.value.position == position


@pytest.mark.parametrize("body", ["", "   \n", "\u200b", "bell \x07"])
def test_empty_bodies_and_control_characters_are_refused(body: str) -> None:
    with pytest.raises(InvalidTemplate):
        check_body(body)


def test_an_empty_prompt_question_is_refused() -> None:
    with pytest.raises(InvalidTemplate, match="no question"):
        check_body("Order {prompt:  }")


plain_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)


@given(plain_text)
def test_any_text_with_braces_doubled_renders_back_to_itself(text: str) -> None:
    """Escaping every brace makes any text a template that renders to exactly that text."""
    escaped = text.replace("{", "{{").replace("}", "}}")
    assert render(escaped, {}) == text
    assert prompts(escaped) == ()


@given(st.lists(st.tuples(plain_text, st.sampled_from(VARIABLES)), max_size=5), plain_text)
def test_values_are_inserted_as_they_are(pieces: list[tuple[str, str]], value: str) -> None:
    """Literal text survives and a value is inserted verbatim, braces in it included."""
    body = "".join(t.replace("{", "{{").replace("}", "}}") + "{" + v + "}" for t, v in pieces)
    values = dict.fromkeys(VARIABLES, value + "x")
    assert render(body, values) == "".join(t + value + "x" for t, _ in pieces)


_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[^{}]")


def _reference(body: str, values: dict[str, str]) -> str:
    """A second reading of the rules: tokens left to right, doubled braces first."""
    out = []
    for token in _TOKEN.findall(body):
        if token in ("{{", "}}"):
            out.append(token[0])
        elif token.startswith("{"):
            name = token[1:-1].strip()
            if name.startswith("prompt:"):
                name = "prompt:" + " ".join(name[7:].split())
            out.append(values[name])
        else:
            out.append(token)
    return "".join(out)


_PIECES = st.sampled_from(["{", "}", "a", " ", "é", "prompt:", *VARIABLES])


@given(st.lists(_PIECES, max_size=20).map("".join))
def test_a_body_renders_as_a_second_reading_of_the_rules_or_is_refused(body: str) -> None:
    """Any body either renders exactly as the rules say, every placeholder filled, or is
    refused when saved; braces are never passed through half-read."""
    try:
        check_body(body)
    except InvalidTemplate:
        return
    values = {**CONTEXT, **{f"prompt:{q}": f"<{q}>" for q in prompts(body)}}
    assert render(body, values) == _reference(body, values)
