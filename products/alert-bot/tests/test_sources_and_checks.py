"""Source lines, document parsers and the de-duplication rules (pure code, no network)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from alert_bot.checks import (
    CheckError,
    evaluate,
    json_value,
    keyword_present,
    page_text,
    parse_feed,
)
from alert_bot.fetch import FetchError, Response
from alert_bot.sources import DEFAULT_EVERY, SourceError, parse_line, parse_lines

from otomat.botkit.testing import TEST_TOKEN

PRODUCT_DIR = Path(__file__).resolve().parents[1]

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>
<item><title>Second</title><link>https://blog.example/2</link><guid>g2</guid></item>
<item><title>First</title><link>https://blog.example/1</link></item>
</channel></rss>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>News</title><entry><title>Hello</title><id>urn:1</id>
<link rel="alternate" href="https://news.example/hello"/></entry></feed>"""


def test_the_schema_is_valid_and_accepts_a_full_configuration() -> None:
    schema = json.loads((PRODUCT_DIR / "config.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(
        {
            "bot_token": TEST_TOKEN,
            "sources": ["up https://example.com every 60"],
            "admins": ["owner_1", "12345"],
            "public_subscriptions": False,
            "min_interval_seconds": 30,
            "fetch_timeout_seconds": 5,
            "max_page_kb": 512,
            "send_rate_per_second": 10.5,
        },
        schema,
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"bot_token": TEST_TOKEN, "sources": [""]}, schema)
    assert schema["properties"]["bot_token"]["x-otomat-check"] == "telegram_token"
    for name, prop in schema["properties"].items():
        assert prop.get("title") and prop.get("description"), name
        assert prop["type"] in ("string", "integer", "number", "boolean", "array")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("up https://example.com every 60", {"kind": "up", "every": 60.0, "status": None}),
        ("UP https://example.com status 204 timeout 5", {"status": 204, "timeout": 5.0}),
        ("up https://example.com", {"every": DEFAULT_EVERY}),
        (
            'keyword https://x.example/p "sold out" absent every 5m',
            {"kind": "keyword", "text": "sold out", "mode": "absent", "every": 300.0},
        ),
        ("keyword https://x.example/p restock", {"text": "restock", "mode": "present"}),
        ("feed https://x.example/rss every 1h", {"kind": "feed", "every": 3600.0}),
        (
            "json https://api.example/v1 data.items.0.price >= 99.5 every 90s",
            {"path": "data.items.0.price", "op": ">=", "threshold": 99.5, "every": 90.0},
        ),
    ],
)
def test_good_lines_parse(line: str, expected: dict[str, Any]) -> None:
    source = parse_line(line)
    for name, value in expected.items():
        assert getattr(source, name) == value, name
    again = parse_line(source.line)  # the canonical line round-trips to the same source
    assert again == source and again.id == source.id


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "empty"),
        ("ping https://x.example", "unknown source type 'ping'"),
        ("up", "needs a URL"),
        ("up ftp://x.example/file", "only http:// and https://"),
        ("up file:///etc/passwd", "only http:// and https://"),
        ("up javascript:alert(1)", "only http:// and https://"),
        ("up http://", "no host"),
        ("up http://x.example:99999/", "not a valid URL"),
        ("up https://x.example every 5", "at least 30 seconds"),
        ("up https://x.example every soon", "not a duration"),
        ("up https://x.example every 30d", "not a duration"),
        ("up https://x.example status 999", "HTTP status code"),
        ("up https://x.example timeout 600", "at most 60"),
        ("up https://x.example extra words", "unexpected words"),
        ('keyword https://x.example "unclosed', "cannot split"),
        ("keyword https://x.example", "needs the text"),
        ('keyword https://x.example "a" sometimes', "present or absent"),
        ("json https://x.example a.b > ", "a dotted path, an operator"),
        ("json https://x.example a..b > 1", "not a dotted path"),
        ("json https://x.example a.b => 1", "not one of"),
        ("json https://x.example a.b > many", "not a number"),
        ("json https://x.example a.b > nan", "finite"),
        ("feed https://x.example status 200", "unexpected words"),
        ("up https://x.example every 60 every 60", "given twice"),
    ],
)
def test_bad_lines_get_a_clear_error(line: str, message: str) -> None:
    with pytest.raises(SourceError, match=message.replace("(", r"\(")):
        parse_line(line)


def test_parse_lines_names_the_bad_line_and_skips_comments_and_duplicates() -> None:
    sources, errors = parse_lines(
        [
            "# my sources",
            "up https://a.example every 60",
            "up https://a.example every 60",
            "",
            "feed gopher://b.example",
        ]
    )
    assert [s.url for s in sources] == ["https://a.example"]
    assert errors == [
        "line 5 ('feed gopher://b.example'): only http:// and https:// URLs can be watched, "
        "not 'gopher://b.example'"
    ]


def test_the_install_form_check_confirms_or_explains_each_line() -> None:
    from alert_bot.sources import check_source_line

    assert check_source_line("feed https://b.example/rss every 10m") == (
        "new items in https://b.example/rss, every 600 s"
    )
    with pytest.raises(ValueError, match="unknown source type 'pong'"):
        check_source_line("pong https://b.example")


def test_page_text_ignores_markup_scripts_and_comments() -> None:
    html = "<p>In <b>Stock</b></p><script>var s='sold out'</script ><!-- sold out -->&amp; more"
    assert page_text(html) == "in stock & more"
    assert keyword_present(html, "IN   stock")
    assert not keyword_present(html, "sold out")


@pytest.mark.parametrize(
    "hostile",
    ["<" * 2_000_000, "<!--" * 500_000, "<script>" * 250_000, "<a " * 600_000, "&#" * 1_000_000],
)
def test_hostile_html_is_scanned_in_bounded_time(hostile: str) -> None:
    started = time.perf_counter()
    page_text(hostile)
    assert time.perf_counter() - started < 1.5


def test_feeds_rss_and_atom_parse() -> None:
    assert [(i.id, i.title) for i in parse_feed(RSS)] == [
        ("g2", "Second"),
        ("https://blog.example/1", "First"),
    ]
    [entry] = parse_feed(ATOM)
    assert (entry.id, entry.link) == ("urn:1", "https://news.example/hello")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<rss><channel><item>", "not well-formed"),
        (b"<html><body>hi</body></html>", "not an RSS or Atom feed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<rss><channel><item><title>&b;</title></item></channel></rss>",
            "entities",
        ),
        (b"\xff\xfe garbage", "not well-formed"),
    ],
)
def test_malformed_or_hostile_feeds_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(CheckError, match=message):
        parse_feed(body)


def test_json_values_are_found_by_dotted_path() -> None:
    body = json.dumps({"data": {"items": [{"price": 12.5}, {"price": "7"}]}}).encode()
    assert json_value(body, "data.items.0.price") == 12.5
    assert json_value(body, "data.items.1.price") == 7.0


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (b"{not json", "a", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "a", "nested too deeply"),
        (b'{"a": ' + b"9" * 5000 + b"}", "a", "not valid JSON"),
        (b'{"a": {"b": 1}}', "a.c", "a.c is not in"),
        (b'{"a": [1]}', "a.3", "only 1 items"),
        (b'{"a": true}', "a", "not a number"),
        (b'{"a": "cheap"}', "a", "not a number"),
        (b'{"a": {"b": 1}}', "a", "not a number"),
    ],
)
def test_bad_json_gets_a_clear_error(body: bytes, path: str, message: str) -> None:
    with pytest.raises(CheckError, match=message):
        json_value(body, path)


class FakeFetch:
    """Answers checks with prepared responses (or FetchErrors), in order."""

    def __init__(self, *answers: Response | FetchError) -> None:
        self.answers = list(answers)

    async def __call__(self, url: str, **kwargs: Any) -> Response:
        answer = self.answers.pop(0)
        if isinstance(answer, FetchError):
            raise answer
        return answer


def ok(body: bytes = b"", status: int = 200) -> Response:
    return Response(status, "https://x.example", body, "utf-8")


def run_checks(line: str, *answers: Response | FetchError) -> list[list[str]]:
    """Check ``line`` once per answer, threading the state; return each check's alerts."""
    source = parse_line(line)
    fetcher = FakeFetch(*answers)
    state: dict[str, Any] = {}
    out = []
    for _ in answers:
        state, alerts = asyncio.run(evaluate(source, state, fetcher, timeout=5, max_bytes=1 << 20))
        out.append(alerts)
    return out


def test_up_alerts_once_per_change() -> None:
    alerts = run_checks(
        "up https://x.example every 60",
        ok(),
        FetchError("no complete answer within 5 s"),
        ok(status=503),
        ok(),
        ok(),
    )
    assert [len(a) for a in alerts] == [0, 1, 0, 1, 0]
    assert "DOWN" in alerts[1][0] and "no complete answer" in alerts[1][0]
    assert "UP again" in alerts[3][0]


def test_up_with_an_expected_status() -> None:
    alerts = run_checks("up https://x.example status 204", ok(status=200), ok(status=204))
    assert "expected 204" in alerts[0][0] and "UP again" in alerts[1][0]


def test_keyword_alerts_when_it_appears_and_when_it_goes() -> None:
    alerts = run_checks(
        'keyword https://x.example "in stock"',
        ok(b"<p>sold out</p>"),
        ok(b"<p>In stock!</p>"),
        ok(b"<p>In stock!</p>"),
        FetchError("cannot connect"),
        ok(b"<p>sold out</p>"),
    )
    assert [len(a) for a in alerts] == [0, 1, 0, 0, 1]
    assert "appeared" in alerts[1][0] and "gone" in alerts[4][0]


def test_a_feed_alerts_each_new_item_once_after_a_silent_baseline() -> None:
    newer = RSS.replace(b"<item>", b"<item><title>Third</title><guid>g3</guid></item><item>", 1)
    alerts = run_checks(
        "feed https://x.example/rss", ok(RSS), ok(RSS), ok(newer), ok(b"<oops"), ok(newer)
    )
    assert [len(a) for a in alerts] == [0, 0, 1, 0, 0]
    assert "Third" in alerts[2][0] and "Second" not in alerts[2][0]


def test_a_threshold_is_not_re_alerted_until_it_crosses_back() -> None:
    def price(value: float) -> Response:
        return ok(json.dumps({"data": {"price": value}}).encode())

    alerts = run_checks(
        "json https://x.example data.price > 100",
        price(90),
        price(120),
        price(130),
        ok(b"{broken"),
        price(99),
        price(101),
    )
    assert [len(a) for a in alerts] == [0, 1, 0, 0, 1, 1]
    assert "is 120 (> 100)" in alerts[1][0] and "back to 99" in alerts[4][0]


def test_a_bad_document_is_reported_in_the_state_not_raised() -> None:
    source = parse_line("json https://x.example a > 1")
    state, alerts = asyncio.run(
        evaluate(source, {}, FakeFetch(ok(b"<html>")), timeout=5, max_bytes=1 << 20)
    )
    assert alerts == [] and "not valid JSON" in state["error"]
    state, alerts = asyncio.run(
        evaluate(source, state, FakeFetch(ok(status=500)), timeout=5, max_bytes=1 << 20)
    )
    assert state["error"] == "HTTP status 500"
