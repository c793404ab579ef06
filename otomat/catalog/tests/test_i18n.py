"""A product's own texts in the reader's language: the manifest's [i18n.<lang>] tables, checked
strictly at import, and the catalog list, detail and install form that show them."""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

from otomat.catalog import i18n
from otomat.catalog.errors import ManifestError
from otomat.catalog.manifest import parse_manifest
from otomat.catalog.models import Product
from otomat.catalog.services import import_product
from otomat.catalog.tests.conftest import MANIFEST, write_product

REPO = Path(__file__).resolve().parents[3]

SCHEMA = {
    "type": "object",
    "required": ["bot_token"],
    "properties": {
        "bot_token": {
            "type": "string",
            "title": "Bot token",
            "description": "Paste the secret from BotFather here.",
            "x-otomat-secret": True,
        },
        "greeting": {
            "type": "string",
            "title": "Greeting message",
            "description": "Sent to every newcomer.",
            "pattern": "^[^<>]*$",
            "x-otomat-pattern-message": "Angle brackets are not allowed.",
            "default": "Hi",
        },
        "tone": {
            "type": "string",
            "title": "Tone of voice",
            "description": "How formal the bot sounds.",
            "enum": ["casual", "formal"],
            "x-otomat-enum-labels": ["Relaxed and chatty", "Polite and formal"],
            "default": "casual",
        },
        "topics": {
            "type": "array",
            "title": "Favourite subjects",
            "description": "Subjects the bot likes to talk about.",
            "items": {"type": "string", "enum": ["films", "music"]},
            "x-otomat-enum-labels": ["Motion pictures", "Songs and albums"],
            "default": [],
        },
        "quiet": {
            "type": "object",
            "title": "Night silence",
            "description": "When the bot keeps still.",
            "properties": {
                "start_hour": {
                    "type": "integer",
                    "title": "Beginning hour",
                    "description": "The hour it falls silent.",
                    "default": 22,
                }
            },
            "default": {},
        },
    },
}

ENGLISH = [
    "Echo Bot",
    "Repeats what you say.",
    "Paste the secret from BotFather here.",
    "Greeting message",
    "Sent to every newcomer.",
    "Tone of voice",
    "How formal the bot sounds.",
    "Relaxed and chatty",
    "Polite and formal",
    "Favourite subjects",
    "Subjects the bot likes to talk about.",
    "Motion pictures",
    "Songs and albums",
    "Night silence",
    "When the bot keeps still.",
    "Beginning hour",
    "The hour it falls silent.",
    "Standard plan",
    "month",
]

TRANSLATIONS = """
[i18n.id]
name = "Bot Gema"
description = "Mengulang apa yang Anda katakan."

[i18n.id.plans.standard]
name = "Paket standar"

[i18n.id.schema.bot_token]
title = "Token bot"
description = "Tempel rahasia dari BotFather di sini."

[i18n.id.schema.greeting]
title = "Pesan sapaan"
description = "Dikirim ke setiap pendatang baru."
pattern_message = "Kurung sudut tidak diizinkan."

[i18n.id.schema.tone]
title = "Nada bicara"
description = "Seberapa resmi bot terdengar."
enum_labels = ["Santai", "Sopan dan resmi"]

[i18n.id.schema.topics]
title = "Topik favorit"
description = "Topik yang disukai bot."
enum_labels = ["Film", "Musik"]

[i18n.id.schema.quiet]
title = "Jam hening"
description = "Kapan bot diam."

[i18n.id.schema.quiet.start_hour]
title = "Jam mulai"
description = "Jam bot mulai diam."

[i18n.pl]
name = "Bot Echo"
description = "Powtarza to, co mówisz."

[i18n.pl.plans.standard]
name = "Plan standardowy"

[i18n.pl.schema.bot_token]
title = "Token bota"
description = "Wklej tu sekret od BotFathera."

[i18n.pl.schema.greeting]
title = "Wiadomość powitalna"
description = "Wysyłana każdemu nowemu."
pattern_message = "Nawiasy ostre są niedozwolone."

[i18n.pl.schema.tone]
title = "Ton wypowiedzi"
description = "Jak oficjalnie brzmi bot."
enum_labels = ["Swobodny", "Uprzejmy i oficjalny"]

[i18n.pl.schema.topics]
title = "Ulubione tematy"
description = "Tematy, o których bot lubi mówić."
enum_labels = ["Filmy", "Muzyka"]

[i18n.pl.schema.quiet]
title = "Cisza nocna"
description = "Kiedy bot milczy."

[i18n.pl.schema.quiet.start_hour]
title = "Godzina rozpoczęcia"
description = "Godzina, od której bot milczy."
"""


def translated_product(folder: Path, extra: str = TRANSLATIONS, schema: dict | None = None) -> Path:
    return write_product(folder, manifest=MANIFEST + extra, schema=schema or SCHEMA)


@pytest.fixture
def echo(tmp_path, db):
    from otomat.billing.models import Plan

    version = import_product(translated_product(tmp_path / "echo"), actor=None)
    Plan.objects.create(
        product=version.product,
        code="standard",
        name="Standard plan",
        currency="IDR",
        price_minor=99_000,
        period_months=1,
    )
    return version


def visible_text(response) -> str:
    """The page's text as a reader sees it (tags, scripts and attributes left out)."""
    assert response.status_code == 200
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def english_left(text: str) -> list[str]:
    return [phrase for phrase in ENGLISH if re.search(rf"\b{re.escape(phrase)}\b", text)]


READERS = {
    "id": {
        "name": "Bot Gema",
        "detail": ["Bot Gema", "Nada bicara", "Sopan dan resmi", "Paket standar", "/ bulan"],
        "install": ["Jam mulai", "Film", "Musik", "Santai"],
    },
    "pl": {
        "name": "Bot Echo",
        "detail": ["Bot Echo", "Ton wypowiedzi", "Uprzejmy i oficjalny", "Plan standardowy"],
        "install": ["Godzina rozpoczęcia", "Filmy", "Muzyka", "Swobodny"],
    },
}


@pytest.fixture(params=sorted(READERS))
def reader(request, client, cast):
    """Alice, logged in, reading in one of the languages the product ships."""
    cast.alice.language = request.param
    cast.alice.save(update_fields=["language"])
    client.force_login(cast.alice)
    return request.param


@pytest.mark.django_db
def test_it_shows_no_english_text_of_the_product_in_the_readers_language(client, echo, reader):
    texts = READERS[reader]
    pages = {
        "catalog": visible_text(client.get(reverse("catalog:list"))),
        "detail": visible_text(client.get(reverse("catalog:detail", args=["echo"]))),
        "install": visible_text(client.get(reverse("instances:install", args=["echo"]))),
    }
    for name, text in pages.items():
        assert english_left(text) == [], name
    assert texts["name"] in pages["catalog"]
    for phrase in texts["detail"]:
        assert phrase in pages["detail"] + pages["install"], phrase
    for phrase in texts["install"]:  # the install form's own labels, help texts and choices
        assert phrase in pages["install"], phrase


@pytest.mark.django_db
def test_its_invoice_shows_no_english_text_of_the_product(client, cast, echo, reader):
    """Ordered in the reader's language, the invoice names the product and plan as the
    manifest translates them, on the page and as issued."""
    from otomat.billing.models import Plan
    from otomat.billing.subscriptions import place_order

    with translation.override(reader):  # as the order form's request runs, in her language
        _instance, invoice = place_order(
            account=cast.alice.account,
            version=echo,
            plan=Plan.objects.get(code="standard"),
            name="",
            config={"bot_token": "123456:" + "A" * 35},
            actor=cast.alice,
        )
    assert invoice is not None
    page = visible_text(client.get(reverse("billing:invoice", args=[invoice.pk])))
    assert english_left(page) == []
    lines = " ".join(invoice.lines.values_list("description", flat=True))
    assert READERS[reader]["name"] in lines and READERS[reader]["name"] in page
    assert english_left(lines) == []


@pytest.mark.django_db
def test_english_readers_get_the_manifests_own_texts(client, cast, echo):
    client.force_login(cast.alice)
    detail = visible_text(client.get(reverse("catalog:detail", args=["echo"])))
    install = visible_text(client.get(reverse("instances:install", args=["echo"])))
    assert "Echo Bot" in detail and "Standard plan" in detail and "/ month" in detail
    assert "Polite and formal" in install and "Beginning hour" in install


@pytest.mark.django_db
def test_the_install_forms_pattern_error_is_in_the_readers_language(client, cast, echo):
    cast.alice.language = "pl"
    cast.alice.save(update_fields=["language"])
    client.force_login(cast.alice)
    response = client.post(
        reverse("instances:install", args=["echo"]),
        {"bot_token": "123456:" + "A" * 35, "greeting": "<b>", "tone": "casual"},
    )
    page = visible_text(response) if response.status_code == 200 else response.content.decode()
    assert "Nawiasy ostre są niedozwolone." in page
    assert "Angle brackets" not in page


@pytest.mark.django_db
def test_a_text_left_untranslated_falls_back_to_the_manifests_own(tmp_path):
    partial = '\n[i18n.id]\nname = "Bot Gema"\n\n[i18n.id.schema.tone]\ntitle = "Nada"\n'
    version = import_product(translated_product(tmp_path / "echo", partial), actor=None)
    tone = version.config_schema["properties"]["tone"]
    assert i18n.product_text(version, "name", "id") == "Bot Gema"
    assert i18n.product_text(version, "description", "id") == "Repeats what you say."
    assert i18n.product_text(version, "name", "pl") == "Echo Bot"
    assert i18n.schema_text(tone, "title", "id") == "Nada"
    assert i18n.schema_text(tone, "description", "id") == "How formal the bot sounds."
    with translation.override("id"):
        assert i18n.product_text(version, "name") == "Bot Gema"
    with pytest.raises(ValueError):
        i18n.product_text(version, "price", "id")


def test_per_period_reads_per_month_in_every_language():
    expected = {
        "en": ("month", "3 months", "year"),
        "id": ("bulan", "3 bulan", "tahun"),
        "pl": ("miesiąc", "3 miesiące", "rok"),
    }
    for lang, (one, three, twelve) in expected.items():
        with translation.override(lang):
            assert (i18n.per_period(1), i18n.per_period(3), i18n.per_period(12)) == (
                one,
                three,
                twelve,
            )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[i18n.de]\nname = "Echo"\n', "[i18n.de]: unknown language 'de'"),
        ('[i18n.ID]\nname = "Echo"\n', "unknown language 'ID'"),
        ('[i18n.id]\nnmae = "Echo"\n', "[i18n.id].nmae: unknown key (did you mean 'name'?)"),
        ('[i18n.id]\nname = ""\n', "[i18n.id].name: expected a non-empty string"),
        ("[i18n.id]\nname = 3\n", "[i18n.id].name: expected a non-empty string"),
        ("[i18n]\nid = 3\n", "[i18n.id] must be a table"),
        (
            '[i18n.id.schema.tones]\ntitle = "Nada"\n',
            "[i18n.id.schema.tones]: config.schema.json has no field 'tones' (did you mean 'tone'?)",
        ),
        (
            '[i18n.id.schema.quiet.end_hour]\ntitle = "Jam"\n',
            "[i18n.id.schema.quiet.end_hour]: config.schema.json has no field 'quiet.end_hour'",
        ),
        (
            '[i18n.id.schema.tone]\ntitel = "Nada"\n',
            "[i18n.id.schema.tone].titel: unknown key (did you mean 'title'?)",
        ),
        (
            '[i18n.id.schema.tone]\nenum_labels = ["Santai"]\n',
            "[i18n.id.schema.tone].enum_labels has 1 labels for 2 values",
        ),
        (
            '[i18n.id.schema.bot_token]\nenum_labels = ["A"]\n',
            "[i18n.id.schema.bot_token].enum_labels: 'bot_token' has no enum values",
        ),
        (
            '[i18n.id.schema.bot_token]\npattern_message = "Salah"\n',
            "[i18n.id.schema.bot_token].pattern_message: 'bot_token' has no pattern",
        ),
        (
            '[i18n.id.schema.tone.formal]\ntitle = "Resmi"\n',
            "[i18n.id.schema.tone].formal: unknown key",
        ),
        (
            '[i18n.id.plans."bad code!"]\nname = "X"\n',
            "[i18n.id.plans.bad code!]: 'bad code!' is not a plan code",
        ),
        (
            '[i18n.id.plans.standard]\nprice = "X"\n',
            "[i18n.id.plans.standard].price: unknown key",
        ),
        ('[i18n.id]\nplans = "X"\n', "[i18n.id].plans must be a table of plan codes"),
    ],
)
def test_it_refuses_bad_translations_with_a_clear_message(tmp_path, extra, message):
    folder = translated_product(tmp_path / "echo", "\n" + extra)
    with pytest.raises(ManifestError) as exc:
        parse_manifest(folder)
    assert message in str(exc.value)


@pytest.mark.django_db
def test_a_refused_translation_imports_nothing(tmp_path):
    folder = translated_product(tmp_path / "echo", '\n[i18n.xx]\nname = "Echo"\n')
    with pytest.raises(ManifestError):
        import_product(folder, actor=None)
    assert not Product.objects.exists()


def test_authors_cannot_write_the_stored_translation_key_into_a_schema(tmp_path):
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["tone"]["x-otomat-i18n"] = {"id": {"title": "Nada"}}
    with pytest.raises(ManifestError, match="unknown extension 'x-otomat-i18n'"):
        parse_manifest(translated_product(tmp_path / "echo", "", schema=schema))


@pytest.mark.parametrize("slug", ["greeter", "movie-search", "alert-bot"])
def test_first_party_products_ship_indonesian_and_polish_for_every_text(slug):
    manifest = parse_manifest(REPO / "products" / slug)
    texts = manifest.data["i18n"]
    missing = []
    for lang in ("id", "pl"):
        for key in ("name", "description"):
            if not texts.get(lang, {}).get(key):
                missing.append(f"{lang}:{key}")

        def walk(schema: dict, prefix: str, lang: str = lang) -> None:
            for name, prop in schema.get("properties", {}).items():
                own = prop.get(i18n.I18N_KEY, {}).get(lang, {})
                for key in ("title", "description", "x-otomat-enum-labels"):
                    if key in prop and key not in own:
                        missing.append(f"{lang}:{prefix}{name}.{key}")
                if prop.get("type") == "object":
                    walk(prop, f"{prefix}{name}.")

        walk(manifest.config_schema, "")
    assert missing == []


@pytest.mark.django_db
def test_a_plan_is_named_by_the_manifest_only_where_its_code_is_translated(echo):
    from otomat.billing.models import Plan

    standard = Plan.objects.get(code="standard")
    other = Plan.objects.create(
        product=echo.product, code="pro", name="Pro", currency="IDR", price_minor=1
    )
    assert i18n.plan_name(standard, "id") == "Paket standar"
    assert i18n.plan_name(standard, "pl") == "Plan standardowy"
    assert i18n.plan_name(standard, "en") == "Standard plan"
    assert i18n.plan_name(other, "id") == "Pro"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lang", "name"), [("id", "Bot Gema"), ("pl", "Bot Echo"), ("en", "Echo Bot")]
)
def test_an_unnamed_instance_takes_the_products_name_in_the_installers_language(
    cast, echo, lang, name
):
    from otomat.instances.services import create_instance

    with translation.override(lang):
        instance = create_instance(
            account=cast.alice.account,
            version=echo,
            name="",
            config={"bot_token": "123456:" + "A" * 35},
            actor=cast.alice,
        )
    assert instance.name == name
