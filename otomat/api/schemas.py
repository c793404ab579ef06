"""What every part of the REST API shares: the error bodies it really sends, each under its own
name in the OpenAPI document, the free-text types its inputs use, and :func:`answers`, which
lists an endpoint's responses as they really happen.

Errors (every body is JSON with a ``detail``):

- 400: the request is well-formed but refused (``Error``; ``ConfigErrors`` where a
  configuration is checked: then ``detail`` maps each setting's dotted path to its messages);
- 401: no token, or a token that is unknown, revoked or whose person is deactivated;
- 403: staff only; 404: not found, or another account's;
- 413: the body is larger than the API takes (``DATA_UPLOAD_MAX_MEMORY_SIZE``), or the body
  or query string has more fields than ``DATA_UPLOAD_MAX_NUMBER_FIELDS``;
- 422: a parameter or body of the wrong shape (``ValidationErrors``, one item per problem).
"""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from otomat.catalog.values import text_problem


class Error(Schema):
    detail: str = Field(description="What is wrong, as a sentence for a person.")


class ConfigErrors(Schema):
    detail: str | dict[str, list[str]] = Field(
        description="A sentence, or, when the configuration is refused, the messages of each "
        "refused setting keyed by its dotted path (`admin.chat_id`; `__all__` for the whole)."
    )


class ValidationIssue(Schema):
    type: str = Field(description="The kind of problem, e.g. `missing`, `text`, `uuid_parsing`.")
    loc: list[str | int] = Field(
        description="Where: the part of the request (`body`, `query`, `path`) and the field."
    )
    msg: str = Field(description="What is wrong, as a sentence for a person.")
    ctx: dict[str, Any] | None = None


class ValidationErrors(Schema):
    detail: list[ValidationIssue]


ERRORS: dict[int, type[Schema]] = {
    400: Error,
    401: Error,
    403: Error,
    404: Error,
    413: Error,
    422: ValidationErrors,
}


def answers(ok: dict[int, Any], *errors: int, config: bool = False) -> dict[int, Any]:
    """An operation's ``response=``: the ``ok`` responses, 401 (every endpoint takes a token)
    and each status in ``errors`` with its body; 400 is :class:`ConfigErrors` with ``config``."""
    result = dict(ok)
    for status in (401, *errors):
        result[status] = ConfigErrors if (status == 400 and config) else ERRORS[status]
    return result


def _text(multiline: bool):
    def check(value: str) -> str:
        problem = text_problem(value, multiline=multiline)
        if problem:
            raise PydanticCustomError("text", problem)
        return value

    return AfterValidator(check)


# One line of text (names, codes, references): no control characters, no lone surrogates.
Line = Annotated[str, _text(multiline=False)]
# Text that may span lines (a ticket's message): tab, line feed and carriage return allowed.
Text = Annotated[str, _text(multiline=True)]


def line(max_length: int, **kwargs: Any) -> Any:
    """A ``Field`` for a :data:`Line` of at most ``max_length`` characters (the column's size,
    so PostgreSQL never refuses what the API accepted)."""
    return Field(max_length=max_length, **kwargs)
