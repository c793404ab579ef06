"""The web chat's own texts in English, Indonesian and Polish.

The emulator stands alone (it never imports the platform), so it keeps this small table instead
of gettext catalogs. A page's language is its ``?lang=`` parameter when it is one of
:data:`LANGUAGES` (the platform's "Try it now" passes the visitor's), else the best match of the
browser's ``Accept-Language``, else English. The chat page gets its texts server-side (HTML) and
hands the script's texts over in a ``<meta name="tgemu-texts">`` tag (``common.js`` ``t()``).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping

LANGUAGES = ("en", "id", "pl")
DEFAULT = "en"

# key -> (English, Indonesian, Polish). ``{name}`` marks a value the page fills in.
_TABLE: dict[str, tuple[str, str, str]] = {
    # chat.html
    "page_title": (
        "Chat · Telegram emulator",
        "Obrolan · Emulator Telegram",
        "Czat · Emulator Telegrama",
    ),
    "emulator": ("Telegram emulator", "Emulator Telegram", "Emulator Telegrama"),
    "back_to_list": ("Back to the bot list", "Kembali ke daftar bot", "Wróć do listy botów"),
    "back": ("Back", "Kembali", "Wróć"),
    "you": ("You:", "Anda:", "Ty:"),
    "user_id": ("Your user id", "ID pengguna Anda", "Twój identyfikator użytkownika"),
    "first_name": ("Your first name", "Nama depan Anda", "Twoje imię"),
    "chat": ("Chat", "Obrolan", "Czat"),
    "save": ("Save", "Simpan", "Zapisz"),
    "new_group": ("New group with this bot", "Grup baru dengan bot ini", "Nowa grupa z tym botem"),
    "group_name": ("Group name", "Nama grup", "Nazwa grupy"),
    "make_channel": (
        "Make it a channel (you post, the bot is an administrator)",
        "Jadikan kanal (Anda yang memposting, bot menjadi administrator)",
        "Zrób z tego kanał (ty publikujesz, bot jest administratorem)",
    ),
    "create_group": ("Create group", "Buat grup", "Utwórz grupę"),
    "conversation": ("Conversation", "Percakapan", "Rozmowa"),
    "inline_results": ("Inline results", "Hasil inline", "Wyniki inline"),
    "bot_keyboard": ("Bot keyboard", "Papan tombol bot", "Klawiatura bota"),
    "attach": ("Attach", "Lampirkan", "Załącz"),
    "attach_title": ("Send a photo or a file", "Kirim foto atau berkas", "Wyślij zdjęcie lub plik"),
    "attach_label": (
        "Attach a photo or a file",
        "Lampirkan foto atau berkas",
        "Załącz zdjęcie lub plik",
    ),
    "message": ("Message", "Pesan", "Wiadomość"),
    "write": ("Write a message…", "Tulis pesan…", "Napisz wiadomość…"),
    "write_title": (
        "A message, or @bot and a query for inline mode",
        "Pesan, atau @bot dan kata kunci untuk mode inline",
        "Wiadomość albo @bot i zapytanie w trybie inline",
    ),
    "send": ("Send", "Kirim", "Wyślij"),
    "send_message": ("Send message", "Kirim pesan", "Wyślij wiadomość"),
    "ok": ("OK", "OK", "OK"),
    # chat.js
    "message_buttons": ("Message buttons", "Tombol pesan", "Przyciski wiadomości"),
    "unsupported_button": (
        "This kind of button is not supported by the emulator",
        "Jenis tombol ini tidak didukung oleh emulator",
        "Emulator nie obsługuje tego rodzaju przycisku",
    ),
    "audio": ("Audio", "Audio", "Dźwięk"),
    "voice": ("Voice message", "Pesan suara", "Wiadomość głosowa"),
    "sticker": ("Sticker", "Stiker", "Naklejka"),
    "video_sticker": ("Video sticker", "Stiker video", "Naklejka wideo"),
    "animated_sticker": ("Animated sticker", "Stiker animasi", "Naklejka animowana"),
    "photo": ("Photo", "Foto", "Zdjęcie"),
    "forwarded_from": ("Forwarded from {name}", "Diteruskan dari {name}", "Przekazano od: {name}"),
    "via": ("via @{name}", "melalui @{name}", "przez @{name}"),
    "edited": ("edited", "diedit", "edytowano"),
    "edit_this": ("Edit this message", "Edit pesan ini", "Edytuj tę wiadomość"),
    "edit": ("Edit", "Edit", "Edytuj"),
    "edit_prompt": ("Edit your message", "Edit pesan Anda", "Popraw swoją wiadomość"),
    "cancel": ("Cancel", "Batal", "Anuluj"),
    "not_sent": ("Not sent: {error}", "Tidak terkirim: {error}", "Nie wysłano: {error}"),
    "not_edited": ("Not edited: {error}", "Tidak diedit: {error}", "Nie zmieniono: {error}"),
    "no_answer_press": (
        "The bot did not answer the button press.",
        "Bot tidak menanggapi tombol yang ditekan.",
        "Bot nie odpowiedział na naciśnięcie przycisku.",
    ),
    "channel_owner_only": (
        "Only the channel's owner (user {id}) can post here.",
        "Hanya pemilik kanal (pengguna {id}) yang bisa memposting di sini.",
        "Publikować tu może tylko właściciel kanału (użytkownik {id}).",
    ),
    "no_files_in_channels": (
        "Files cannot be posted in channels from the web chat yet.",
        "Berkas belum bisa diposting ke kanal dari obrolan web.",
        "Z czatu w przeglądarce nie można jeszcze publikować plików w kanałach.",
    ),
    "uploading": ("Uploading {name}…", "Mengunggah {name}…", "Wysyłanie pliku {name}…"),
    "asking": ("Asking @{name}…", "Bertanya ke @{name}…", "Pytanie do @{name}…"),
    "no_answer": ("The bot did not answer.", "Bot tidak menjawab.", "Bot nie odpowiedział."),
    "no_results": ("No results.", "Tidak ada hasil.", "Brak wyników."),
    "bot_deleted": ("This bot was deleted.", "Bot ini sudah dihapus.", "Ten bot został usunięty."),
    "retrying": (
        "Connection problem, retrying…",
        "Koneksi bermasalah, mencoba lagi…",
        "Problem z połączeniem, ponawiam…",
    ),
    "private_chat_lower": ("private chat", "obrolan pribadi", "czat prywatny"),
    "private_chat": ("Private chat", "Obrolan pribadi", "Czat prywatny"),
    "channel": ("Channel: {title}", "Kanal: {title}", "Kanał: {title}"),
    "group": ("Group: {title}", "Grup: {title}", "Grupa: {title}"),
    "bad_identity": (
        "Enter a positive user id and a name.",
        "Isi ID pengguna berupa angka positif dan sebuah nama.",
        "Podaj dodatni identyfikator użytkownika i imię.",
    ),
    "created_channel": (
        "Created channel {title}: you post, the bot (an administrator) sees every post.",
        "Kanal {title} dibuat: Anda yang memposting, bot (administrator) melihat setiap posting.",
        "Utworzono kanał {title}: ty publikujesz, bot (administrator) widzi każdy wpis.",
    ),
    "created_group": (
        "Created group {title}. Bots see commands and replies to them here.",
        "Grup {title} dibuat. Di sini bot melihat perintah dan balasan untuknya.",
        "Utworzono grupę {title}. Boty widzą tu polecenia i odpowiedzi na swoje wiadomości.",
    ),
    "group_not_created": (
        "Group not created: {error}",
        "Grup tidak dibuat: {error}",
        "Nie utworzono grupy: {error}",
    ),
    # The 404 page.
    "not_found_title": ("Bot not found", "Bot tidak ditemukan", "Nie znaleziono bota"),
    "not_found_text": (
        "There is no bot {name} in this emulator.",
        "Tidak ada bot {name} di emulator ini.",
        "W tym emulatorze nie ma bota {name}.",
    ),
}

_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")


def texts(lang: str) -> dict[str, str]:
    """Every text of the web chat in ``lang`` (English for an unknown one)."""
    column = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    return {key: row[column] for key, row in _TABLE.items()}


def text(lang: str, key: str, **values: str) -> str:
    """One text in ``lang`` with its ``{name}`` values filled in (not escaped)."""
    result = texts(lang)[key]
    for name, value in values.items():
        result = result.replace("{" + name + "}", value)
    return result


def _primary(tag: str) -> str:
    match = _TAG.match(tag.strip())
    return match.group(1).lower() if match else ""


def choose_language(query: Mapping[str, str], accept_language: str) -> str:
    """The page's language: ``lang`` in ``query`` when supported, else the best supported one
    of ``accept_language`` (highest q first, in the order given), else English."""
    wanted = _primary(query.get("lang", ""))
    if wanted in LANGUAGES:
        return wanted
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = _primary(tag)
        if lang in LANGUAGES and quality > 0:
            choices.append((-quality, position, lang))
    return min(choices)[2] if choices else DEFAULT


_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def localise(page: str, lang: str) -> str:
    """``page`` (an HTML template) with ``{{ lang }}``, ``{{ texts_json }}`` (every text, for
    the script) and ``{{ key }}`` replaced by the escaped texts of ``lang``."""
    table = texts(lang)
    values = {
        **{key: html.escape(value) for key, value in table.items()},
        "lang": lang,
        "texts_json": html.escape(json.dumps(table, ensure_ascii=False), quote=True),
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), page)
