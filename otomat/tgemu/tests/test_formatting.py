"""Entity detection and parse modes, without a server."""

from __future__ import annotations

import pytest

from otomat.tgemu.errors import ApiError
from otomat.tgemu.formatting import detect_entities, render_text, utf16_len


def test_commands_at_the_start_get_a_bot_command_entity():
    assert detect_entities("/start") == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert detect_entities("/start@greeter_bot payload")[0] == {
        "type": "bot_command",
        "offset": 0,
        "length": 18,
    }
    assert detect_entities("path/to/file") == []
    assert detect_entities("<b>x</b>") == []


def test_offsets_count_utf16_units():
    text = "😀 /help"
    assert utf16_len("😀") == 2
    assert detect_entities(text) == [{"type": "bot_command", "offset": 3, "length": 5}]


def test_mentions_hashtags_and_links_are_detected():
    kinds = [e["type"] for e in detect_entities("hi @alice_x, see #news at https://example.com/a.")]
    assert kinds == ["mention", "hashtag", "url"]


def test_html_parse_mode():
    text, entities = render_text(
        '<b>bold <i>both</i></b> <a href="https://x.y">l</a> <code>c</code>', "HTML"
    )
    assert text == "bold both l c"
    assert {"type": "bold", "offset": 0, "length": 9} in entities
    assert {"type": "italic", "offset": 5, "length": 4} in entities
    assert {"type": "text_link", "offset": 10, "length": 1, "url": "https://x.y"} in entities
    assert {"type": "code", "offset": 12, "length": 1} in entities


def test_html_pre_with_language():
    text, entities = render_text('<pre><code class="language-python">x = 1</code></pre>', "html")
    assert text == "x = 1"
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]


def test_markdown_v2_parse_mode():
    text, entities = render_text("*b* _i_ __u__ ~s~ ||sp|| `c` [l](https://x.y) \\!", "MarkdownV2")
    assert text == "b i u s sp c l !"
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]


def test_markdown_v2_pre_block_and_quote():
    text, entities = render_text("```python\nprint(1)\n```", "MarkdownV2")
    assert text == "print(1)\n" and entities[0]["language"] == "python"
    text, entities = render_text(">quoted\nplain", "MarkdownV2")
    assert text == "quoted\nplain" and entities[0]["type"] == "blockquote"


def test_legacy_markdown_needs_no_escaping():
    text, entities = render_text("*bold* costs 5.00 (ok)", "Markdown")
    assert text == "bold costs 5.00 (ok)"
    assert entities == [{"type": "bold", "offset": 0, "length": 4}]


@pytest.mark.parametrize(
    ("text", "mode", "fragment"),
    [
        ("1.5", "MarkdownV2", "Character '.' is reserved"),
        ("*open", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
        ("_open", "Markdown", "Can't find end of the entity starting at byte offset 0"),
        ("<b>x</i>", "HTML", "Unmatched end tag"),
        ("a < b", "HTML", "Unsupported start tag"),
        ('<a href="">x</a>', "HTML", "Can't find URL"),
        ("<span>x</span>", "HTML", "tg-spoiler"),
    ],
)
def test_malformed_markup_raises_telegram_errors(text, mode, fragment):
    with pytest.raises(ApiError) as caught:
        render_text(text, mode)
    assert caught.value.code == 400
    assert caught.value.description.startswith("Bad Request: can't parse entities: ")
    assert fragment in caught.value.description
