"""Knowledge-base suggestions ranked by relevance in English, Indonesian and Polish: rare
words weigh more than common ones, a title match more than one in the text, and a query of
stop words — or of a word every article shares, like "bot" — suggests nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from otomat.support import kb, tickets
from otomat.support.models import Article, KbCategory

BASES = {
    "en": [
        ("Where do I get a bot token?", "Open @BotFather in Telegram and send /newbot."),
        ("The bot does not answer after a restart", "Check the token and the logs of the bot."),
        ("How do I pay an invoice?", "Choose the invoice and pay by bank transfer; the bot runs."),
        ("Change the bot's welcome text", "Open the instance page of your bot and edit it."),
        ("Cancel a subscription", "The bot stops at the end of the period you paid."),
    ],
    "id": [
        ("Cara mendapatkan token bot", "Buka @BotFather di Telegram lalu kirim /newbot."),
        ("Bot tidak menjawab setelah restart", "Periksa token dan log bot Anda."),
        (
            "Cara membayar tagihan",
            "Pilih tagihan lalu bayar dengan transfer bank; bot tetap jalan.",
        ),
        ("Mengubah teks sambutan bot", "Buka halaman instance bot dan ubah teksnya."),
        ("Berhenti berlangganan", "Bot berhenti di akhir periode yang sudah dibayar."),
    ],
    "pl": [
        ("Skąd wziąć token bota", "Otwórz @BotFather w Telegramie i wyślij /newbot."),
        ("Bot nie odpowiada po restarcie", "Sprawdź token i logi bota."),
        ("Jak zapłacić fakturę", "Wybierz fakturę i zapłać przelewem; bot działa dalej."),
        ("Zmiana tekstu powitania bota", "Otwórz stronę instancji bota i zmień tekst."),
        ("Rezygnacja z subskrypcji", "Bot zatrzyma się z końcem opłaconego okresu."),
    ],
}

CASES = {
    # language: [(query, the best article's title or None for no suggestion)]
    "en": [
        ("how do I pay my invoice", "How do I pay an invoice?"),
        ("bot restart not answering", "The bot does not answer after a restart"),
        ("lost my token", "Where do I get a bot token?"),  # the title beats the text
        ("how is it with the", None),  # stop words only
        ("my bot", None),  # a word every article shares
    ],
    "id": [
        ("bagaimana cara membayar tagihan saya", "Cara membayar tagihan"),
        ("bot saya tidak menjawab", "Bot tidak menjawab setelah restart"),
        ("token hilang", "Cara mendapatkan token bot"),
        ("apa yang bisa saya lakukan untuk ini", None),
        ("bot saya", None),
    ],
    "pl": [
        ("jak zapłacić fakturę?", "Jak zapłacić fakturę"),
        ("bot nie działa po restarcie", "Bot nie odpowiada po restarcie"),
        ("zgubiłem token", "Skąd wziąć token bota"),
        ("czy to jest tak", None),
        ("mój bot", None),
    ],
}


@pytest.fixture
def base(db):
    def make(language):
        category = KbCategory.objects.create(name=language, slug=f"kb-{language}")
        for n, (title, body) in enumerate(BASES[language]):
            Article.objects.create(
                category=category,
                title=title,
                slug=f"{language}-{n}",
                body=body,
                status=Article.Status.PUBLISHED,
            )

    return make


@pytest.mark.parametrize("language", ["en", "id", "pl"])
def test_it_ranks_by_relevance_with_stop_words(base, language):
    base(language)
    for query, best in CASES[language]:
        found = kb.search(query)
        if best is None:
            assert found == [], (query, found)
        else:
            assert found and found[0].title == best, (query, [a.title for a in found])


def test_the_title_weighs_more_than_the_text(base):
    base("en")
    found = [a.title for a in kb.search("token")]
    assert found[:2] == ["Where do I get a bot token?", "The bot does not answer after a restart"]


def test_stop_words_of_each_language_are_dropped():
    assert kb.words("Jak to się robi? Nie działa!") == ["robi", "dziala"]
    assert kb.words("Bagaimana cara saya membayar tagihan yang ini") == [
        "cara",
        "membayar",
        "tagihan",
    ]
    assert kb.words("How do I change the text of my bot") == ["change", "text", "bot"]


def test_no_suggestion_for_stop_words_on_the_new_ticket_form(
    client, cast, department, sla_policy, base
):
    base("en")
    tickets.open_ticket(
        account=cast.alice.account, requester=cast.alice, subject="Pay invoice", body="?"
    )
    client.force_login(cast.alice)
    page = client.get(reverse("support:suggest"), {"subject": "how do I do it"}).content.decode()
    assert "How do I pay an invoice?" not in page and "Pay invoice" not in page
    page = client.get(reverse("support:suggest"), {"subject": "pay the invoice"}).content.decode()
    assert "How do I pay an invoice?" in page and "Pay invoice" in page
