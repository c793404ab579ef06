"""The bot's own texts in English, Indonesian and Polish (``language`` in the configuration).

Placeholders are ``str.format`` fields; values inserted into HTML messages are escaped by the
caller.
"""

from __future__ import annotations

LANGUAGES = ("en", "id", "pl")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "help": (
            "I find films published on {sites}.\n\n"
            "Send a title (in a group: /search <title>), e.g. /search matrix. "
            "Typos are fine. You can also type @{bot} <title> in any chat."
        ),
        "usage": "Send /search followed by a film title, e.g. /search matrix.",
        "too_long": "That query is too long: at most 200 characters, please.",
        "nothing": "Nothing found for “{q}”. Check the spelling or try a shorter title.",
        "still_indexing": "I am still reading the sites for the first time. Please try again in a minute.",
        "header": "Results for “{q}” — {first}–{last} of {total}",
        "open": "Open",
        "poster": "Poster",
        "prev": "« Prev",
        "next": "Next »",
        "expired": "This search has expired. Please search again.",
        "not_admin": "Sorry, this command is only for the bot's administrators.",
        "stats_head": "Sites: {sites} · films indexed: {items}",
        "stats_ok": "✓ {site} — {kind}, {items} items, indexed {when}",
        "stats_err": "✗ {site} — {error}",
        "stats_err_old": "  last attempt failed: {error}",
        "stats_never": "✗ {site} — not indexed yet",
        "stats_pending": "Messages waiting for auto-delete: {n}",
        "reindexing": "Re-indexing {n} sites…",
        "reindexed": "Re-indexing done: {items} films from {ok} of {n} sites.",
        "inline_hint": "Type a film title",
        "inline_hint_text": "Type @{bot} and a film title to search.",
        "inline_none": "Nothing found for “{q}”",
    },
    "id": {
        "help": (
            "Saya mencari film yang diterbitkan di {sites}.\n\n"
            "Kirim judul film (di grup: /search <judul>), misalnya /search matrix. "
            "Salah ketik tidak apa-apa. Anda juga bisa mengetik @{bot} <judul> di obrolan mana pun."
        ),
        "usage": "Kirim /search diikuti judul film, misalnya /search matrix.",
        "too_long": "Pencarian terlalu panjang: maksimal 200 karakter.",
        "nothing": "Tidak ada hasil untuk “{q}”. Periksa ejaan atau coba judul yang lebih pendek.",
        "still_indexing": "Saya masih membaca situs untuk pertama kalinya. Silakan coba lagi sebentar lagi.",
        "header": "Hasil untuk “{q}” — {first}–{last} dari {total}",
        "open": "Buka",
        "poster": "Poster",
        "prev": "« Sebelumnya",
        "next": "Berikutnya »",
        "expired": "Pencarian ini sudah kedaluwarsa. Silakan cari lagi.",
        "not_admin": "Maaf, perintah ini hanya untuk admin bot.",
        "stats_head": "Situs: {sites} · film terindeks: {items}",
        "stats_ok": "✓ {site} — {kind}, {items} item, diindeks {when}",
        "stats_err": "✗ {site} — {error}",
        "stats_err_old": "  percobaan terakhir gagal: {error}",
        "stats_never": "✗ {site} — belum diindeks",
        "stats_pending": "Pesan yang menunggu dihapus otomatis: {n}",
        "reindexing": "Mengindeks ulang {n} situs…",
        "reindexed": "Pengindeksan selesai: {items} film dari {ok} dari {n} situs.",
        "inline_hint": "Ketik judul film",
        "inline_hint_text": "Ketik @{bot} dan judul film untuk mencari.",
        "inline_none": "Tidak ada hasil untuk “{q}”",
    },
    "pl": {
        "help": (
            "Wyszukuję filmy opublikowane na {sites}.\n\n"
            "Wyślij tytuł (w grupie: /search <tytuł>), np. /search matrix. "
            "Literówki nie przeszkadzają. Możesz też wpisać @{bot} <tytuł> w dowolnym czacie."
        ),
        "usage": "Wyślij /search i tytuł filmu, np. /search matrix.",
        "too_long": "Zapytanie jest za długie: najwyżej 200 znaków.",
        "nothing": "Nic nie znaleziono dla „{q}”. Sprawdź pisownię lub spróbuj krótszego tytułu.",
        "still_indexing": "Wciąż czytam strony po raz pierwszy. Spróbuj ponownie za minutę.",
        "header": "Wyniki dla „{q}” — {first}–{last} z {total}",
        "open": "Otwórz",
        "poster": "Plakat",
        "prev": "« Wstecz",
        "next": "Dalej »",
        "expired": "To wyszukiwanie wygasło. Wyszukaj ponownie.",
        "not_admin": "Przepraszam, to polecenie jest tylko dla administratorów bota.",
        "stats_head": "Strony: {sites} · filmy w indeksie: {items}",
        "stats_ok": "✓ {site} — {kind}, pozycji: {items}, indeks z {when}",
        "stats_err": "✗ {site} — {error}",
        "stats_err_old": "  ostatnia próba nieudana: {error}",
        "stats_never": "✗ {site} — jeszcze nie zindeksowano",
        "stats_pending": "Wiadomości czekające na automatyczne usunięcie: {n}",
        "reindexing": "Ponowne indeksowanie {n} stron…",
        "reindexed": "Indeksowanie zakończone: {items} filmów z {ok} z {n} stron.",
        "inline_hint": "Wpisz tytuł filmu",
        "inline_hint_text": "Wpisz @{bot} i tytuł filmu, aby wyszukać.",
        "inline_none": "Nic nie znaleziono dla „{q}”",
    },
}
