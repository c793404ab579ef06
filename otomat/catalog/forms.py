"""Forms of the catalog's own pages (the configuration form is built by schema_form)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class UploadForm(forms.Form):
    """One product archive. The archive's content is checked by ``import_product``; this form
    only refuses what can be told without opening it (size)."""

    archive = forms.FileField(
        label=_("Product archive"),
        help_text=_(
            "A .tar.gz, .tgz, .tar or .zip file with otomat.toml at its root or inside one folder."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(ARCHIVE_SUFFIXES)}),
    )

    def clean_archive(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["archive"]
        limit = settings.PRODUCT_ARCHIVE_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _("The archive is bigger than %(limit)s MB, the limit.")
                % {"limit": round(limit / (1024 * 1024), 1)}
            )
        return upload
