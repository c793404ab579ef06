"""Serving a contract's PDFs, only after checking the stored bytes against their SHA-256."""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.utils.translation import gettext as _

from otomat.accounts.services import record_audit
from otomat.projects.offers import contracts
from otomat.projects.offers.models import Contract

log = logging.getLogger("otomat.offers")


def pdf_response(request, contract: Contract, *, signed: bool) -> HttpResponse:
    """The signed PDF (when ``signed`` and the contract is signed) or the PDF to sign, as an
    attachment; a 409 when the stored file no longer matches its recorded hash (recorded in
    the audit log, the file is not served)."""
    if not contracts.verify(contract):
        log.error("contract %s: the stored PDF does not match its SHA-256", contract.number)
        record_audit(
            "contract.tampered",
            actor=request.user,
            account=contract.account,
            target=contract,
        )
        return HttpResponse(
            _("The stored contract does not match its fingerprint and is not served."),
            status=409,
            content_type="text/plain; charset=utf-8",
        )
    if signed and contract.status == Contract.Status.SIGNED:
        content, suffix, digest = bytes(contract.signed_document), "-signed", contract.signed_sha256
    else:
        content, suffix, digest = bytes(contract.document), "", contract.document_sha256
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{contract.number}{suffix}.pdf"'
    response["ETag"] = f'"{digest}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
