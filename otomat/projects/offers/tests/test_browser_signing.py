"""Headless Chromium: the lead signs their contract on the signing page, in English and in
Polish, at desktop and phone widths — the consent is shown in their language, the page does not
scroll sideways, and the evidence records the browser's own user agent."""

from __future__ import annotations

import pytest

from otomat.projects.models import Lead
from otomat.projects.offers import services
from otomat.projects.offers.models import Signature
from otomat.testing.browser import shot

from .conftest import NOW, exact_data

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXTS = {
    "en": ("Sign the contract", "I have read the contract", "Certificate of completion"),
    "pl": ("Podpisz umowę", "Przeczytałem(-am) umowę", "Certyfikat zakończenia"),
}


@pytest.mark.parametrize("lang", ["en", "pl"])
@pytest.mark.parametrize("width", [1200, 390], ids=["desktop", "phone"])
def test_the_lead_signs_on_the_signing_page(browser_page, live_server, cast, lang, width):
    lead = Lead.objects.create(
        name="Jan Kowalski",
        email=f"jan-{lang}-{width}@example.pl",
        company="Domki nad Jeziorem",
        language=lang,
        source=Lead.Source.ESTIMATOR,
    )
    offer = services.create_offer(exact_data(language=lang), actor=cast.owner, lead=lead, now=NOW)
    services.send_offer(offer, actor=cast.owner, now=NOW)
    contract = services.accept_offer(offer, version=1, now=NOW)
    heading, consent, certificate = TEXTS[lang]

    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/projects/offers/o/{offer.token}/contract/")
    assert page.get_by_role("heading", name=heading).is_visible()
    assert consent in page.locator("#consent-text").inner_text()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    shot(page, f"offers-sign-{lang}-{width}")

    # The browser refuses to submit without the consent ticked (the field is required).
    page.fill("#id_name", "Jan Kowalski")
    page.click("#sign-form button")
    assert not Signature.objects.exists()
    page.check("#id_consent")
    page.click("#sign-form button")
    page.wait_for_url("**/certificate/")
    assert page.get_by_role("heading", name=certificate).is_visible()
    shot(page, f"offers-certificate-{lang}-{width}")

    signature = Signature.objects.get(contract=contract)
    assert signature.name == "Jan Kowalski" and signature.ip == "127.0.0.1"
    assert "Chrome" in signature.user_agent
    assert signature.signed_sha256 in page.content()
