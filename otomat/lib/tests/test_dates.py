"""One date helper for every page: billing's and support's filters render what
otomat.lib.dates renders, in the active language and time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation

from otomat.billing.templatetags import billing_tags
from otomat.lib import dates
from otomat.support.templatetags import support_time

MOMENT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # 17:00 in Jakarta


def _plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pytest.mark.parametrize(
    ("lang", "day", "moment", "named"),
    [
        ("en", "Dec 3, 2026", "Dec 3, 2026 5:00 PM", "Dec 3, 2026 5:00 PM (Asia/Jakarta)"),
        ("id", "3 Des 2026", "3 Des 2026 17.00", "3 Des 2026 17.00 (Asia/Jakarta)"),
        ("pl", "3 gru 2026", "3 gru 2026 17:00", "3 gru 2026 17:00 (Asia/Jakarta)"),
    ],
)
def test_billings_filters_render_what_the_date_helpers_render(lang, day, moment, named):
    with translation.override(lang), timezone.override(ZoneInfo("Asia/Jakarta")):
        assert _plain(billing_tags.local_date(MOMENT)) == day == _plain(dates.medium_date(MOMENT))
        assert _plain(billing_tags.local_date(date(2026, 12, 3))) == day
        assert _plain(billing_tags.local_moment(MOMENT)) == moment
        assert _plain(billing_tags.local_datetime(MOMENT)) == named
        assert support_time.medium_date(MOMENT) == dates.medium_date(MOMENT)
        assert support_time.zoned(MOMENT) == dates.zoned_datetime(MOMENT)
        assert dates.zoned_datetime(MOMENT).endswith("WIB")


def test_nothing_renders_as_nothing():
    for helper in (
        billing_tags.local_date,
        billing_tags.local_datetime,
        billing_tags.local_moment,
        dates.local_moment,
        dates.named_zone_datetime,
    ):
        assert helper(None) == ""
