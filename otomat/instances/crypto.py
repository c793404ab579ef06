"""Secrets at rest: a JSON model field encrypted with MultiFernet (keys from settings, newest
first, so a new key can be prepended and old rows re-encrypted at leisure)."""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS))


def encrypt_json(value) -> str:
    return fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str):
    try:
        return json.loads(fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ValueError(
            "Cannot decrypt a stored secret: OTOMAT_ENCRYPTION_KEYS does not hold the key it was "
            "encrypted with."
        ) from exc


class EncryptedJSONField(models.TextField):
    """Stores ``json.dumps(value)`` encrypted; the database only ever sees Fernet tokens."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        return decrypt_json(value)

    def to_python(self, value):
        if isinstance(value, str) and value:
            return decrypt_json(value)
        return value if value is not None else {}

    def get_prep_value(self, value):
        if value is None:
            return ""
        return encrypt_json(value)

    def value_to_string(self, obj):  # serialisation (dumpdata) keeps it encrypted
        return self.get_prep_value(self.value_from_object(obj))
