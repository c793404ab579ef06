"""The knowledge base: categories and articles, search, suggestions while a customer types a
ticket (articles, and answers from their own account's earlier tickets), "was this helpful",
and an article drafted from a ticket."""

from __future__ import annotations

import re
import unicodedata

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from otomat.accounts.models import Account, User
from otomat.support.models import Article, ArticleVote, KbCategory, Ticket, TicketMessage

STOPWORDS = {
    # en
    "the",
    "a",
    "an",
    "is",
    "are",
    "to",
    "of",
    "and",
    "or",
    "in",
    "on",
    "my",
    "i",
    "it",
    "for",
    "how",
    "do",
    "does",
    "not",
    "can",
    "with",
    "what",
    "why",
    # id
    "yang",
    "dan",
    "di",
    "ke",
    "dari",
    "tidak",
    "bisa",
    "saya",
    "ini",
    "itu",
    "untuk",
    "apa",
    "bagaimana",
    "kenapa",
    "ada",
    # pl
    "nie",
    "jak",
    "się",
    "w",
    "na",
    "z",
    "co",
    "czy",
    "jest",
    "mój",
    "moj",
}
CANDIDATES = 200  # rows read per search, whatever the size of the base


def words(text: str) -> list[str]:
    """Lower-case words without accents or stop words ("Nie działa!" → ["dziala"])."""
    plain = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return [w for w in re.findall(r"[a-z0-9]{2,}", plain) if w not in STOPWORDS][:12]


def _score(terms: list[str], title: str, body: str) -> int:
    title_words, body_words = set(words(title)), set(words(body))
    score = 0
    for term in terms:
        if term in title_words:
            score += 5
        elif any(w.startswith(term) for w in title_words):
            score += 3
        if term in body_words:
            score += 1
    return score


def _matching(qs, terms: list[str], fields: tuple[str, ...]):
    condition = Q()
    for term in terms:
        for field in fields:
            condition |= Q(**{f"{field}__icontains": term})
    return qs.filter(condition)


def search(query: str, *, product_id: int | None = None, limit: int = 10) -> list[Article]:
    """Published articles ranked by how many words of ``query`` they contain (title first)."""
    terms = words(query)
    if not terms:
        return []
    qs = Article.objects.filter(status=Article.Status.PUBLISHED).select_related("category")
    if product_id:
        qs = qs.filter(Q(product_id=product_id) | Q(product__isnull=True))
    candidates = list(_matching(qs, terms, ("title", "body"))[:CANDIDATES])
    ranked = sorted(
        ((a, _score(terms, a.title, a.body)) for a in candidates), key=lambda p: (-p[1], p[0].title)
    )
    return [a for a, score in ranked if score > 0][:limit]


def suggestions(subject: str, *, account: Account | None, limit: int = 5) -> dict:
    """What to show while a customer types a ticket subject: matching articles and their own
    account's earlier tickets with the answer staff gave (never another account's)."""
    articles = search(subject, limit=limit)
    history = []
    terms = words(subject)
    if account is not None and terms:
        tickets = _matching(
            Ticket.objects.filter(account=account).exclude(status=Ticket.Status.MERGED),
            terms,
            ("subject",),
        ).select_related("requester")[:CANDIDATES]
        ranked = sorted(
            ((t, _score(terms, t.subject, "")) for t in tickets), key=lambda p: (-p[1], -p[0].pk)
        )
        for ticket, score in ranked[:limit]:
            if score <= 0:
                continue
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
        from_ticket=ticket,
        updated_at=timezone.now(),
    )
