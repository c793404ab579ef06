"""The catalog's errors: one base class, so callers (views, CLI, API) catch ``CatalogError`` and
show ``str(error)`` to the person who caused it. Every message is written for that person: it
names the key, file or field at fault and never contains a secret value."""

from __future__ import annotations


class CatalogError(Exception):
    """Base class; ``str(error)`` is a complete, user-facing sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ManifestError(CatalogError):
    """``otomat.toml`` or the configuration schema it references is invalid."""


class ArchiveError(CatalogError):
    """An uploaded archive is unsafe, too big or not an archive at all."""


class ProductImportError(CatalogError):
    """The import itself cannot proceed (duplicate version, unreadable source, ...)."""


class CheckError(CatalogError):
    """A live check (``x-otomat-check``) refused the value or could not run."""


class ConfigError(CatalogError):
    """A configuration does not satisfy its product's schema.

    ``errors`` maps form field names (``bot_token``, ``admin__chat_id`` for nested fields,
    ``__all__`` for errors about the whole configuration) to lists of messages. Messages never
    repeat the submitted value, so a mistyped secret does not leak into a page or a log.
    """

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        parts = [
            f"{name.replace('__', '.')}: {message}" if name != "__all__" else message
            for name, messages in errors.items()
            for message in messages
        ]
        super().__init__("; ".join(parts) or "The configuration is not valid.")

    def as_paths(self) -> dict[str, list[str]]:
        """The same errors keyed by dotted configuration paths (``admin.chat_id``), for the API."""
        return {name.replace("__", "."): messages for name, messages in self.errors.items()}
