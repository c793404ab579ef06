"""How long hostile email takes to parse, beside an ordinary email of the same size measured
in the same run (the baseline). The inbound mail path must stay linear: a slow path in the
parser is a denial of service, since anyone can send mail to the support address.

    .venv/bin/python bench/mail_parsing.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def message(body: bytes, headers: str = "") -> bytes:
    head = "From: a@example.com\r\nTo: support@example.com\r\nSubject: hi\r\n" + headers
    return head.encode() + b"\r\n" + body


def cases() -> dict[str, bytes]:
    ordinary = message(b"Hello, my bot does not answer.\r\n" * 30_000)
    html = ("<p>" + "Hello " * 5 + "</p>") * 20_000
    return {
        "ordinary text (1 MB)": ordinary,
        "ordinary HTML (0.7 MB)": message(html.encode(), "Content-Type: text/html\r\n"),
        "unclosed tags <a (100 KB)": message(b"<a" * 50_000, "Content-Type: text/html\r\n"),
        "comment openers <!-- (300 KB)": message(b"<!--" * 75_000, "Content-Type: text/html\r\n"),
        "64 KB From of comments": message(b"x", "X-Pad: 1\r\n").replace(
            b"From: a@example.com", b"From: " + b"(c)" * 21_000 + b" <a@example.com>"
        ),
        "400,000 encoded words in Subject": message(b"x", "X-S: 1\r\n").replace(
            b"Subject: hi", b"Subject: " + b"=?utf-8?q?=C5=BC?= " * 400_000
        ),
        "5,000-deep multipart": nested(5000),
        "20 MB body (over the limit)": message(b"x" * (20 * 1024 * 1024)),
    }


def nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    for level in reversed(range(depth)):
        boundary = f"=_{level}_x".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
            b"--" + boundary + b"\r\n" + body + b"\r\n--" + boundary + b"--\r\n"
        )
    return b"From: a@example.com\r\nSubject: bomb\r\nMIME-Version: 1.0\r\n" + body


def main() -> int:
    from otomat.support.mail_in import MailError, parse_email

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for name, raw in cases().items():
        times, outcome = [], ""
        for _ in range(args.repeat):
            started = time.perf_counter()
            try:
                parse_email(raw)
                outcome = "parsed"
            except MailError as exc:
                outcome = f"refused: {str(exc)[:40]}"
            times.append(time.perf_counter() - started)
        rows.append((name, len(raw), statistics.median(times), outcome))
    base = rows[0][2]
    print(f"{'case':<36}{'bytes':>11}{'median s':>10}{'× ordinary':>12}  outcome")
    for name, size, median, outcome in rows:
        print(f"{name:<36}{size:>11}{median:>10.3f}{median / base:>12.1f}  {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
