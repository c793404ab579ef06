"""The knowledge base: categories and articles, search, suggestions while a customer types a
ticket (articles, and answers from their own account's earlier tickets), "was this helpful",
and an article drafted from a ticket."""

from __future__ import annotations

import math
import re
import unicodedata

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.text import slugify

from otomat.accounts.models import Account, User
from otomat.support.models import Article, ArticleVote, KbCategory, Ticket, TicketMessage

# Words that say nothing about what is asked, per language (written as ``words`` sees them:
# lower case, accents removed). A query is read against all three: customers mix languages.
STOPWORDS_BY_LANGUAGE = {
    "en": """a about after again all also am an and any are as at be been before but by can
        cannot could did do does doing dont for from get got had has have having he her here
        him his how i if im in into is isnt it its just me more my no not now of off on once
        only or other our out over please so some still such than that the their them then
        there these they this to too up us very was we were what when where which while who
        why will with would you your""",
    "id": """ada adalah agar akan aku anda apa apakah atau bagaimana bahwa baru belum bisa
        boleh dalam dan dari dengan di dia harus hari ini itu jadi jika juga kalau kami kamu
        kan karena ke kenapa ketika kok lagi lah mau mengapa mohon nya pada para saja sama
        sampai saya sedang sudah supaya tapi telah tetapi tidak tolong untuk yang ya""",
    "pl": """a aby ale bo by byc byl byla bylo czy dla do gdy gdzie i ich ja jak jaki jakie
        jest jestem jeszcze juz ktora ktore ktory lub ma mam mi mnie moj moja moje mozna na
        nam nas nie nic niz o od po pod prosze przez przy sa sie ta tak tam te tego ten to
        tu ty w we wiec z za ze zeby""",
}
STOPWORDS = frozenset(w for text in STOPWORDS_BY_LANGUAGE.values() for w in text.split())
CANDIDATES = 200  # rows read per search, whatever the size of the base
TITLE_WEIGHT = 3  # a word of the title says more about an article than one of its text
# A word found in more than this share of the published articles (in a base of at least
# COMMON_MIN_BASE) is common there — "bot" in a bot shop: it adds to a score but never
# suggests an article on its own.
COMMON_SHARE = 0.5
COMMON_MIN_BASE = 4


_NOT_DECOMPOSED = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "đ": "d", "ß": "ss"})


def _plain(text: str) -> str:
    plain = unicodedata.normalize("NFKD", (text or "").translate(_NOT_DECOMPOSED))
    return plain.encode("ascii", "ignore").decode().lower()


def words(text: str) -> list[str]:
    """Lower-case words without accents or stop words ("Nie działa!" → ["dziala"]), each once,
    in order, at most 12."""
    seen: list[str] = []
    for w in re.findall(r"[a-z0-9]{2,}", _plain(text)):
        if w not in STOPWORDS and w not in seen:
            seen.append(w)
    return seen[:12]


def _matches(term: str, vocabulary: set[str]) -> bool:
    """The term is a word of ``vocabulary``, or one is the start of the other and the shorter
    has four letters or more ("restart" ~ "restarting", "bayar" ~ "pembayaran" does not)."""
    if term in vocabulary:
        return True
    if len(term) < 4:
        return False
    return any(len(w) >= 4 and (w.startswith(term) or term.startswith(w)) for w in vocabulary)


def _rank(terms: list[str], docs: list[tuple[object, str, str]], *, base: int) -> list:
    """``docs`` as (item, title, text) ranked by relevance to ``terms``: each word weighs by
    its rarity among the documents (an inverse document frequency over a base of ``base``),
    more in the title than in the text. A document needs a match on a word that is not
    common in the base; stop words never count. Returns the items, best first."""
    vocab = [
        (item, set(_plain_words(title)), set(_plain_words(body))) for item, title, body in docs
    ]
    base = max(base, len(docs), 1)
    df = {term: sum(1 for _, t, b in vocab if _matches(term, t | b)) for term in terms}
    idf = {term: math.log((base + 1) / (df[term] + 0.5)) for term in terms}
    common = {term for term in terms if base >= COMMON_MIN_BASE and df[term] > COMMON_SHARE * base}
    ranked = []
    for item, title_words, body_words in vocab:
        score, telling = 0.0, False
        for term in terms:
            if _matches(term, title_words):
                score += TITLE_WEIGHT * idf[term]
            elif _matches(term, body_words):
                score += idf[term]
            else:
                continue
            telling = telling or term not in common
        if telling and score > 0:
            ranked.append((score, item))
    ranked.sort(key=lambda p: -p[0])
    return [item for _, item in ranked]


def _plain_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]{2,}", _plain(text)) if w not in STOPWORDS]


def _matching(qs, terms: list[str], fields: tuple[str, ...]):
    condition = Q()
    for term in terms:
        for field in fields:
            condition |= Q(**{f"{field}__icontains": term})
    return qs.filter(condition)


def reader_language() -> str:
    """The active language as one of ``settings.LANGUAGES`` ("pl-pl" reads "pl"; an unknown
    one the default)."""
    code = (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0].lower()
    known = {c for c, _name in settings.LANGUAGES}
    return code if code in known else settings.LANGUAGE_CODE.split("-")[0]


def for_reader(qs, language: str | None):
    """``qs`` without the articles a reader of ``language`` should not be shown: an article
    in another language is left out when its translation group has an article in theirs
    (among the published ones). Articles with no group, or whose group lacks the reader's
    language, stay as the fallback. ``None``: every language."""
    if not language:
        return qs
    theirs = Article.objects.filter(status=Article.Status.PUBLISHED, language=language).exclude(
        translation_key=""
    )
    return qs.exclude(
        Q(translation_key__in=theirs.values("translation_key")) & ~Q(language=language)
    )


def reader_first(articles: list[Article], language: str | None) -> list[Article]:
    """``articles`` with those in the reader's ``language`` first (each part keeps its
    order), and one article per translation group: the first met."""
    seen: set[str] = set()
    unique = []
    for article in articles:
        if article.translation_key:
            if article.translation_key in seen:
                continue
            seen.add(article.translation_key)
        unique.append(article)
    if not language:
        return unique
    return [a for a in unique if a.language == language] + [
        a for a in unique if a.language != language
    ]


def search(
    query: str, *, product_id: int | None = None, limit: int = 10, language: str | None = None
) -> list[Article]:
    """Published articles ranked by relevance to ``query`` (rare words and title words weigh
    more; see ``_rank``); none when only stop words or only common words match. With a
    ``language``, the reader's: articles in it first, another language's only where the
    article has no translation in theirs (``for_reader``)."""
    terms = words(query)
    if not terms:
        return []
    qs = Article.objects.filter(status=Article.Status.PUBLISHED).select_related("category")
    qs = for_reader(qs, language)
    if product_id:
        qs = qs.filter(Q(product_id=product_id) | Q(product__isnull=True))
    base = qs.count()
    # A small base is read whole (so "zaplacic" finds "zapłacić", which a database's
    # case-insensitive match would not); a large one is narrowed to rows sharing a word.
    narrowed = qs if base <= CANDIDATES else _matching(qs, terms, ("title", "body"))
    candidates = list(narrowed.order_by("title")[:CANDIDATES])
    ranked = _rank(terms, [(a, a.title, a.body) for a in candidates], base=base)
    return reader_first(ranked, language)[:limit]


def suggestions(
    subject: str, *, account: Account | None, limit: int = 5, language: str | None = None
) -> dict:
    """What to show while a customer types a ticket subject: matching articles (in the
    reader's ``language`` first, see ``search``) and their own account's earlier tickets
    with the answer staff gave (never another account's), both ranked by relevance
    (``_rank``)."""
    articles = search(subject, limit=limit, language=language)
    history = []
    terms = words(subject)
    if account is not None and terms:
        own = Ticket.objects.filter(account=account).exclude(status=Ticket.Status.MERGED)
        base = own.count()
        narrowed = own if base <= CANDIDATES else _matching(own, terms, ("subject",))
        candidates = list(narrowed.select_related("requester").order_by("-pk")[:CANDIDATES])
        ranked = _rank(terms, [(t, t.subject, "") for t in candidates], base=base)
        for ticket in ranked[:limit]:
            answer = (
                ticket.messages.filter(kind=TicketMessage.Kind.STAFF)
                .order_by("-created_at")
                .first()
            )
            history.append({"ticket": ticket, "answer": answer})
    return {"articles": articles, "history": history}


def vote(article: Article, *, voter: str, helpful: bool) -> bool:
    """Count one answer per voter; returns False for a repeated vote (nothing counted)."""
    try:
        with transaction.atomic():
            ArticleVote.objects.create(article=article, voter=voter[:80], helpful=helpful)
            field = "helpful_yes" if helpful else "helpful_no"
            Article.objects.filter(pk=article.pk).update(**{field: F(field) + 1})
    except IntegrityError:
        return False
    return True


def unique_slug(title: str) -> str:
    base = slugify(title)[:200] or "article"
    slug, n = base, 2
    while Article.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def draft_from_ticket(
    ticket: Ticket, *, actor: User, category: KbCategory | None = None
) -> Article:
    """A draft article from a ticket: the question as title, staff's answers as the text
    (customer details left out), for staff to edit and publish."""
    answers = ticket.messages.filter(kind=TicketMessage.Kind.STAFF).order_by("created_at")
    body = "\n\n".join(m.body for m in answers) or ticket.messages.first().body
    category = (
        category
        or KbCategory.objects.first()
        or KbCategory.objects.create(name="General", slug="general")
    )
    return Article.objects.create(
        category=category,
        product=ticket.product,
        title=ticket.subject,
        slug=unique_slug(ticket.subject),
        body=body,
        # Written in the customer's language, most likely; staff correct it when editing.
        language=getattr(ticket.requester, "language", "") or settings.LANGUAGE_CODE,
        from_ticket=ticket,
        updated_at=timezone.now(),
    )
