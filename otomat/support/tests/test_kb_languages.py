"""Knowledge-base articles per language: a reader sees the article in their language (on the
knowledge-base pages and in the suggestions while typing a ticket), another language's only
when theirs has none; staff choose the language when writing one; the demo has each of its
articles in English, Indonesian and Polish, once however often it runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from otomat.support import kb
from otomat.support.models import Article, KbCategory

TOKEN = {
    "en": ("Where do I get a bot token?", "Open BotFather and send newbot for a token."),
    "id": ("Dari mana saya mendapatkan token bot?", "Buka BotFather dan kirim newbot."),
    "pl": ("Skąd wziąć token bota?", "Otwórz BotFather i wyślij newbot."),
}


@pytest.fixture
def articles(db):
    category = KbCategory.objects.create(name="Start", slug="start")
    for language, (title, body) in TOKEN.items():
        Article.objects.create(
            category=category,
            title=title,
            slug=f"token-{language}",
            body=body,
            language=language,
            translation_key="bot-token",
            status=Article.Status.PUBLISHED,
        )
    # Only in English: the fallback for every reader.
    Article.objects.create(
        category=category,
        title="Cancel a subscription with a token refund",
        slug="cancel",
        body="The subscription ends with the paid period.",
        language="en",
        translation_key="cancel",
        status=Article.Status.PUBLISHED,
    )
    return category


def _speaking(user, language):
    user.language = language
    user.save(update_fields=["language"])
    return user


@pytest.mark.parametrize("language", ["id", "pl"])
def test_a_reader_gets_the_article_in_their_language(client, cast, articles, language):
    client.force_login(_speaking(cast.alice, language))
    page = client.get(reverse("support:kb")).content.decode()
    assert TOKEN[language][0] in page
    assert TOKEN["en"][0] not in page
    other = "pl" if language == "id" else "id"
    assert TOKEN[other][0] not in page
    # The English-only article is there as the fallback, marked with its language.
    assert "Cancel a subscription" in page

    found = client.get(reverse("support:kb"), {"q": "token"}).content.decode()
    assert TOKEN[language][0] in found and TOKEN["en"][0] not in found


@pytest.mark.parametrize("language", ["id", "pl"])
def test_the_suggestion_while_typing_is_in_the_readers_language(client, cast, articles, language):
    client.force_login(_speaking(cast.alice, language))
    # A query in English still suggests the reader's translation of the article.
    page = client.get(reverse("support:suggest"), {"subject": "BotFather newbot"}).content
    page = page.decode()
    assert TOKEN[language][0] in page
    assert TOKEN["en"][0] not in page
    assert [a.slug for a in kb.search("BotFather", language=language)] == [f"token-{language}"]


def test_an_english_reader_gets_the_english_one(client, cast, articles):
    client.force_login(cast.alice)
    page = client.get(reverse("support:suggest"), {"subject": "newbot token"}).content.decode()
    assert TOKEN["en"][0] in page
    assert TOKEN["id"][0] not in page and TOKEN["pl"][0] not in page


def test_it_falls_back_to_another_language_when_theirs_is_missing(client, cast, articles):
    Article.objects.filter(slug="token-pl").update(status=Article.Status.DRAFT)
    client.force_login(_speaking(cast.alice, "pl"))
    page = client.get(reverse("support:suggest"), {"subject": "BotFather newbot"}).content
    page = page.decode()
    assert TOKEN["pl"][0] not in page  # a draft is not shown
    # One article of the group, not its every translation.
    shown = [a.slug for a in kb.search("BotFather newbot", language="pl")]
    assert len(shown) == 1 and shown[0] in ("token-en", "token-id")
    # The reader's language first when a fallback matches as well.
    ranked = [a.slug for a in kb.search("token", language="id")]
    assert ranked[0] == "token-id" and "cancel" in ranked


def test_the_article_page_links_its_translations(client, cast, articles):
    client.force_login(_speaking(cast.alice, "id"))
    page = client.get(reverse("support:kb_article", args=["token-id"])).content.decode()
    assert reverse("support:kb_article", args=["token-pl"]) in page
    assert reverse("support:kb_article", args=["token-en"]) in page


def test_the_api_answers_in_the_requests_language(client, cast, articles):
    from otomat.accounts.models import ApiToken

    token = ApiToken.issue(cast.alice, "tests")[1]
    response = client.get(
        "/api/v1/support/articles",
        {"q": "token"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_ACCEPT_LANGUAGE="pl",
    )
    assert response.status_code == 200, response.content
    found = {a["title"]: a["language"] for a in response.json()}
    assert found[TOKEN["pl"][0]] == "pl" and TOKEN["en"][0] not in found


def _form(category, **changes):
    data = {
        "category": category.pk,
        "product": "",
        "language": "id",
        "translation_key": "restart",
        "title": "Memulai ulang bot",
        "slug": "memulai-ulang",
        "body": "Buka halaman instance.",
        "status": "published",
    }
    data.update(changes)
    return data


def test_staff_write_an_article_in_a_language(client, cast, articles):
    client.force_login(cast.staff)
    url = reverse("support:config_new", args=["articles"])
    assert 'name="language"' in client.get(url).content.decode()
    response = client.post(url, _form(articles))
    assert response.status_code == 302, response.content.decode()[:2000]
    article = Article.objects.get(slug="memulai-ulang")
    assert (article.language, article.translation_key) == ("id", "restart")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"language": "de"}, "Select a valid choice"),  # not one of the site's languages
        ({"language": ""}, "This field is required"),
        (
            {"language": "pl", "translation_key": "bot-token"},  # the group has a Polish one
            "This translation group already has an article in this language.",
        ),
        ({"translation_key": "not a key!"}, "Enter a valid"),
    ],
)
def test_a_bad_language_is_refused_and_changes_nothing(client, cast, articles, changes, error):
    client.force_login(cast.staff)
    before = list(Article.objects.values_list("pk", "language", "translation_key"))
    response = client.post(
        reverse("support:config_new", args=["articles"]), _form(articles, **changes)
    )
    assert response.status_code == 400
    assert error in response.content.decode()
    assert list(Article.objects.values_list("pk", "language", "translation_key")) == before
    # Nor on an existing article: a Polish one cannot become a second Indonesian one.
    polish = Article.objects.get(slug="token-pl")
    response = client.post(
        reverse("support:config_edit", args=["articles", polish.pk]),
        _form(articles, slug="token-pl", language="id", translation_key="bot-token"),
    )
    assert response.status_code == 400
    polish.refresh_from_db()
    assert polish.language == "pl"


def test_the_demo_has_its_articles_in_three_languages_once(db):
    from otomat.demo import ensure_demo_support

    ensure_demo_support()
    # An older demo database: English articles without a group get theirs on the next run.
    Article.objects.exclude(language="en").delete()
    Article.objects.update(translation_key="")
    ensure_demo_support()
    ensure_demo_support()
    groups = {}
    for article in Article.objects.all():
        groups.setdefault(article.translation_key, []).append(article.language)
    assert len(groups) == 4 and "" not in groups
    assert all(sorted(languages) == ["en", "id", "pl"] for languages in groups.values())
    assert kb.search("token bot", language="id")[0].slug == "bot-token-id"


def test_an_article_drafted_from_a_ticket_is_in_the_customers_language(cast, department):
    from otomat.support import tickets

    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=_speaking(cast.alice, "pl"),
        subject="Jak zmienić token?",
        body="Pytanie.",
    )
    article = kb.draft_from_ticket(ticket, actor=cast.staff)
    assert article.language == "pl" and article.status == Article.Status.DRAFT


def test_staff_see_each_articles_language_in_the_list(client, cast, articles):
    client.force_login(cast.staff)
    page = client.get(reverse("support:config", args=["articles"])).content.decode()
    assert "Indonesian (bot-token)" in page and "Polish (bot-token)" in page
