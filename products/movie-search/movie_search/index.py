"""The search index: one SQLite file per instance (``ctx.data_dir / "index.sqlite3"``).

Typo tolerance in two steps. An FTS5 table with the **trigram** tokenizer finds candidates that
share at least one three-letter piece with a query word (``matirx`` shares ``mat`` with
``matrix``); a Python score then ranks them by how well each query word matches some title word
(difflib's ratio: ``matirx``/``matrix`` = 0.83) and drops weak ones. Where SQLite lacks the
trigram tokenizer (older than 3.34), every title is a candidate — fine for a few thousand posts.

All functions are synchronous and open their own connection: the bot calls them from worker
threads (indexing) and from the event loop (searching, a few milliseconds).
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import SequenceMatcher
from pathlib import Path

from movie_search.sources import Fetcher, FetchError, Item, SiteReport, detect, fetch_items
from movie_search.sources.parse import normalise

MIN_SCORE = 0.75
MAX_RESULTS = 100
MAX_CANDIDATES = 2000
MAX_QUERY = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    url TEXT PRIMARY KEY,          -- as configured by the customer
    kind TEXT,                     -- wordpress | rss | atom | sitemap; NULL = not readable
    source_url TEXT,               -- what the adapter reads
    items INTEGER NOT NULL DEFAULT 0,
    indexed_at TEXT,               -- last successful index, ISO 8601 UTC
    checked_at TEXT,               -- last attempt
    error TEXT                     -- last attempt's failure reason, NULL when it worked
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    title TEXT NOT NULL,
    norm TEXT NOT NULL,            -- normalise(title): what is searched
    year INTEGER,
    url TEXT NOT NULL,
    poster TEXT NOT NULL DEFAULT '',
    published TEXT NOT NULL DEFAULT '',
    UNIQUE (site, url)
);
CREATE INDEX IF NOT EXISTS items_site ON items (site);
"""
FTS = "CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(norm, tokenize='trigram')"


@dataclass(frozen=True)
class Hit:
    title: str
    year: int | None
    url: str
    poster: str
    site: str  # the host name, shown as the site's name
    score: float


@dataclass(frozen=True)
class SiteStatus:
    url: str
    kind: str | None
    items: int
    indexed_at: str | None
    checked_at: str | None
    error: str | None


def has_trigram() -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer."""
    with closing(sqlite3.connect(":memory:")) as db:
        try:
            db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        except sqlite3.OperationalError:
            return False
    return True


def site_name(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname or url
    return host.removeprefix("www.")


def word_score(query_word: str, title_words: list[str]) -> float:
    best = 0.0
    for word in title_words:
        if word == query_word:
            return 1.0
        if len(query_word) >= 3 and word.startswith(query_word):
            best = max(best, 0.95)
        elif abs(len(word) - len(query_word)) <= 3:
            best = max(best, SequenceMatcher(None, query_word, word, autojunk=False).ratio())
    return best


def score(query: str, title: str) -> float:
    """How well the normalised ``query`` matches the normalised ``title`` (0–1.1)."""
    if not query or not title:
        return 0.0
    if f" {query} " in f" {title} ":
        return 1.1
    words = title.split()
    per_word = [word_score(q, words) for q in query.split()]
    return sum(per_word) / len(per_word)


class Index:
    """The index of one instance. ``path`` is created (with its tables) on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)
            try:
                db.execute(FTS)
                self.fts = True
            except sqlite3.OperationalError:  # no FTS5 or no trigram tokenizer
                self.fts = False

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    # ------------------------------------------------------------------ writing

    def replace_site(self, site: str, report: SiteReport, items: Iterable[Item]) -> int:
        """Replace everything indexed for ``site`` with ``items`` in one transaction (a search
        never sees a half-indexed site); returns the number of items stored."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            if self.fts:
                db.execute(
                    "DELETE FROM items_fts WHERE rowid IN (SELECT id FROM items WHERE site = ?)",
                    (site,),
                )
            db.execute("DELETE FROM items WHERE site = ?", (site,))
            count = 0
            for item in items:
                cur = db.execute(
                    "INSERT OR IGNORE INTO items (site, title, norm, year, url, poster, published)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        site,
                        item.title,
                        normalise(item.title),
                        item.year,
                        item.url,
                        item.poster,
                        item.published,
                    ),
                )
                if cur.rowcount and self.fts:
                    db.execute(
                        "INSERT INTO items_fts (rowid, norm) VALUES (?, ?)",
                        (cur.lastrowid, normalise(item.title)),
                    )
                count += cur.rowcount
            db.execute(
                "INSERT INTO sites (url, kind, source_url, items, indexed_at, checked_at, error)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (url) DO UPDATE SET"
                " kind = excluded.kind, source_url = excluded.source_url, items = excluded.items,"
                " indexed_at = excluded.indexed_at, checked_at = excluded.checked_at, error = NULL",
                (site, report.kind, report.source_url, count, now, now),
            )
        return count

    def record_error(self, site: str, reason: str) -> None:
        """Remember a failed attempt; the items of the last good index stay searchable."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO sites (url, checked_at, error) VALUES (?, ?, ?) ON CONFLICT (url)"
                " DO UPDATE SET checked_at = excluded.checked_at, error = excluded.error",
                (site, now, reason[:300]),
            )

    def forget_sites(self, keep: Iterable[str]) -> int:
        """Drop sites no longer configured (and their items); returns how many were dropped."""
        keep = set(keep)
        gone = [s.url for s in self.sites() if s.url not in keep]
        with closing(self._connect()) as db, db:
            for site in gone:
                if self.fts:
                    db.execute(
                        "DELETE FROM items_fts WHERE rowid IN (SELECT id FROM items WHERE site=?)",
                        (site,),
                    )
                db.execute("DELETE FROM items WHERE site = ?", (site,))
                db.execute("DELETE FROM sites WHERE url = ?", (site,))
        return len(gone)

    # ------------------------------------------------------------------ reading

    def sites(self) -> list[SiteStatus]:
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT url, kind, items, indexed_at, checked_at, error FROM sites ORDER BY url"
            ).fetchall()
        return [SiteStatus(*row) for row in rows]

    def source_of(self, site: str) -> tuple[str, str] | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT kind, source_url FROM sites WHERE url = ? AND kind IS NOT NULL", (site,)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def count(self) -> int:
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def search(self, query: str, *, limit: int = MAX_RESULTS) -> list[Hit]:
        """Items whose titles match ``query``, best first, typos tolerated; ``[]`` for a query
        with no letters or digits. Raises ``ValueError`` for a query over 200 characters."""
        if len(query) > MAX_QUERY:
            raise ValueError(f"the query is longer than {MAX_QUERY} characters")
        norm = normalise(query)
        if not norm:
            return []
        with closing(self._connect()) as db:
            rows = self._candidates(db, norm)
        scored = []
        for title, item_norm, year, url, poster, site in rows:
            s = score(norm, item_norm)
            if s >= MIN_SCORE:
                scored.append(Hit(title, year, url, poster, site_name(site), round(s, 3)))
        scored.sort(key=lambda h: (-h.score, h.title.casefold(), -(h.year or 0)))
        return scored[:limit]

    def _candidates(self, db: sqlite3.Connection, norm: str) -> list[tuple]:
        columns = "i.title, i.norm, i.year, i.url, i.poster, i.site"
        grams = sorted(
            {w[k : k + 3] for w in norm.split() if len(w) >= 3 for k in range(len(w) - 2)}
        )
        if self.fts and grams:
            match = " OR ".join(f'"{g}"' for g in grams)  # normalised text has no quotes
            return db.execute(
                f"SELECT {columns} FROM items_fts f JOIN items i ON i.id = f.rowid"  # noqa: S608
                " WHERE items_fts MATCH ? ORDER BY f.rank LIMIT ?",
                (match, MAX_CANDIDATES),
            ).fetchall()
        if self.fts:  # only short words: substring search
            like = "%" + norm.replace("%", "").replace("_", "") + "%"
            return db.execute(
                f"SELECT {columns} FROM items i WHERE i.norm LIKE ? LIMIT ?",  # noqa: S608
                (like, MAX_CANDIDATES),
            ).fetchall()
        return db.execute(
            f"SELECT {columns} FROM items i LIMIT ?",  # noqa: S608
            (MAX_CANDIDATES * 10,),
        ).fetchall()


@dataclass(frozen=True)
class SiteResult:
    url: str
    kind: str | None
    items: int
    error: str | None


def index_site(
    index: Index,
    site: str,
    *,
    fetcher_factory: Callable[[], Fetcher] = Fetcher,
    max_pages: int = 200,
) -> SiteResult:
    """Detect (when not known yet, or when the known source failed) and index one site.

    Never raises for a bad site: the failure is recorded (``/stats`` shows it) and the items
    of the last good run stay searchable.
    """
    known = index.source_of(site)
    report: SiteReport | None = None
    if known:
        report = SiteReport(site, known[0], source_url=known[1])
        try:
            items = fetch_items(known[0], known[1], fetcher=fetcher_factory(), max_pages=max_pages)
        except FetchError:
            report = None  # the site changed (plugin removed, feed moved): detect again
    if report is None:
        report = detect(site, fetcher=fetcher_factory())
        if not report.supported:
            index.record_error(site, report.reason)
            return SiteResult(site, None, 0, report.reason)
        try:
            items = fetch_items(
                report.kind or "", report.source_url, fetcher=fetcher_factory(), max_pages=max_pages
            )
        except FetchError as exc:
            index.record_error(site, str(exc))
            return SiteResult(site, report.kind, 0, str(exc))
    count = index.replace_site(site, report, items)
    return SiteResult(site, report.kind, count, None)


def reindex(
    index: Index, sites: list[str], *, fetcher_factory: Callable[[], Fetcher] = Fetcher
) -> list[SiteResult]:
    """Index every configured site and forget sites no longer configured."""
    index.forget_sites(sites)
    return [index_site(index, s, fetcher_factory=fetcher_factory) for s in sites]
