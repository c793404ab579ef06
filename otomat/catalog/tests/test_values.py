"""Text that is not text and numbers that are not numbers: refused by one rule
(``otomat.catalog.values``) that the configuration form and the API's validation both use."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otomat.catalog.errors import ConfigError
from otomat.catalog.schema_form import build_form_class, validate_config
from otomat.catalog.values import text_problem

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "welcome": {"type": "string", "x-otomat-widget": "textarea"},
        "password": {"type": "string", "x-otomat-secret": True},
        "ratio": {"type": "number"},
        "limit": {"type": "number", "minimum": 0, "maximum": 10},
        "sites": {"type": "array", "items": {"type": "string"}},
        "admin": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}

Form = build_form_class(SCHEMA)

BAD_TEXT = [
    ("\x00", "U+0000"),  # NUL: PostgreSQL cannot store it
    ("\x01", "U+0001"),
    ("\x1b[31m", "U+001B"),  # an ANSI escape: repaints a staff member's terminal
    ("\x7f", "U+007F"),
    ("\x9b", "U+009B"),  # a C1 control
    ("\ud800", "U+D800"),  # a lone surrogate: not encodable as UTF-8
    ("\udfff", "U+DFFF"),
]


def _errors(config) -> dict[str, list[str]]:
    with pytest.raises(ConfigError) as caught:
        validate_config(SCHEMA, config)
    return caught.value.errors


@pytest.mark.parametrize(("char", "code"), BAD_TEXT)
@pytest.mark.parametrize("field", ["title", "welcome", "password"])
def test_validate_config_refuses_control_characters_and_lone_surrogates(field, char, code):
    errors = _errors({field: f"Hi{char}there"})
    assert list(errors) == [field]
    [message] = errors[field]
    assert code in message
    assert "Hi" not in message  # the value (perhaps a secret) is never repeated


@pytest.mark.parametrize(("char", "code"), BAD_TEXT)
def test_list_items_and_nested_settings_are_checked_too(char, code):
    errors = _errors({"sites": ["ok.example", f"b{char}d"], "admin": {"name": char}})
    assert errors["sites"] == [text_problem(char).join(["Item 2: ", ""])]
    assert code in errors["admin__name"][0]


def test_a_line_break_is_allowed_only_where_the_text_may_span_lines():
    validate_config(SCHEMA, {"welcome": "Hello\r\n\tthere\n"})
    for field in ("title", "password"):
        assert "one line" in _errors({field: "Hello\nthere"})[field][0]
    assert "one line" in _errors({"title": "a\tb"})["title"][0]
    assert "one line" in _errors({"sites": ["a\nb"]})["sites"][0]


def test_ordinary_unicode_is_text():
    # Emoji with joiners, right-to-left marks, non-breaking spaces and CJK are all text.
    validate_config(SCHEMA, {"title": "Cześć 👩‍💻 \u200f\u00a0日本", "welcome": "Halo,\nDunia 🇮🇩"})


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("field", ["ratio", "limit"])
def test_validate_config_refuses_nan_and_infinity(field, raw):
    config = json.loads(f'{{"{field}": {raw}}}')  # what the API's JSON parser hands over
    errors = _errors(config)
    assert errors == {field: ["Enter a finite number (NaN and Infinity are not numbers)."]}


def test_nan_is_refused_even_where_the_schema_would_let_it_through():
    # NaN compares false with every bound, so "minimum"/"maximum" alone let it pass.
    assert "finite" in _errors({"sites": [float("nan")]})["sites"][0]


def test_a_settings_name_that_is_not_text_is_refused():
    errors = _errors({"ad\ud800min": 1})
    assert len(errors["__all__"]) == 1
    assert "U+D800" in errors["__all__"][0]
    assert "\ud800" not in errors["__all__"][0]


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc"])))
def test_any_utf8_text_without_controls_is_accepted(text):
    assert text_problem(text) is None
    assert text_problem(text, multiline=True) is None


@given(st.text(), st.booleans())
def test_accepted_text_always_encodes_and_holds_no_controls(text, multiline):
    if text_problem(text, multiline=multiline) is None:
        text.encode("utf-8")
        assert "\x00" not in text
        assert multiline or "\n" not in text


# -- the form: the same rule, next to the field -------------------------------------------


@pytest.mark.parametrize(("char", "code"), [c for c in BAD_TEXT if c[0] != "\x00"])
@pytest.mark.parametrize("field", ["title", "welcome", "admin__name"])
def test_the_form_refuses_them_next_to_the_field(field, char, code):
    form = Form({field: f"Hi{char}there"})
    assert not form.is_valid()
    assert list(form.errors) == [field]
    assert code in form.errors[field][0]
    assert form.config is None


def test_the_form_refuses_nul_and_a_line_break_in_one_line_text():
    form = Form({"title": "a\x00b"})
    assert not form.is_valid()
    assert form.errors == {"title": ["Null characters are not allowed."]}
    form = Form({"password": "p\nw", "welcome": "two\nlines"})
    assert not form.is_valid()
    assert list(form.errors) == ["password"]
    assert "one line" in form.errors["password"][0]


def test_the_form_refuses_nan_and_infinity():
    for raw in ("NaN", "Infinity", "-inf"):
        form = Form({"ratio": raw})
        assert not form.is_valid()
        assert form.errors == {"ratio": ["Enter a number."]}


def test_the_form_accepts_multi_line_text_where_allowed():
    form = Form({"welcome": "Hello\r\n\tthere", "title": "Hi", "sites": "a\nb"})
    assert form.is_valid(), form.errors
    assert form.config["welcome"] == "Hello\r\n\tthere"
    assert form.config["sites"] == ["a", "b"]
