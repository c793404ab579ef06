"""The estimator's arithmetic: base range plus each picked option's range times its quantity,
dependencies, and every kind of bad selection refused with a sentence (nothing stored)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otomat.projects import estimator
from otomat.projects.estimator import EstimateError
from otomat.projects.models import Estimate, EstimatorOption, EstimatorSettings


def test_it_adds_the_base_and_each_option_times_its_quantity(options):
    result = estimator.compute({"shop": 1, "payments": 1, "languages": 2}, language="en")
    # base 1–2 weeks, 3,000–5,000; shop 3–5, 12,000–20,000; payments 1–1.5, 3,000–5,000;
    # two languages 2 × (0.5–1, 1,500–3,000)
    assert result.weeks_min == Decimal("1") + 3 + 1 + 1
    assert result.weeks_max == Decimal("2") + 5 + Decimal("1.5") + 2
    assert result.cost_min_minor == (3000 + 12000 + 3000 + 3000) * 100
    assert result.cost_max_minor == (5000 + 20000 + 5000 + 6000) * 100
    assert [line.key for line in result.lines] == ["_base", "shop", "payments", "languages"]
    assert result.lines[-1].quantity == 2
    assert result.selections == [
        {"key": "shop", "quantity": 1},
        {"key": "payments", "quantity": 1},
        {"key": "languages", "quantity": 2},
    ]


def test_nothing_picked_is_the_base_range(options):
    result = estimator.compute([], language="en")
    assert (result.weeks_min, result.weeks_max) == (1, 2)
    assert (result.cost_min_minor, result.cost_max_minor) == (300000, 500000)
    # a quantity of 0 means not picked
    assert estimator.compute({"languages": 0}).lines == result.lines


def test_it_says_the_range_in_the_readers_locale(options):
    result = estimator.compute({"shop": 1, "payments": 1})
    assert estimator.summary(result, "en") == "5–8.5 weeks, PLN\xa018,000–30,000"
    assert (
        estimator.format_money_range(1800000, 3100000, "PLN", "pl") == "18\xa0000–31\xa0000\xa0zł"
    )
    assert estimator.format_money_range(1800000, 3100000, "PLN", "en") == "PLN\xa018,000–31,000"
    assert estimator.format_money_range(18_000_000, 31_000_000, "IDR", "id") == (
        "Rp\xa018.000.000–31.000.000"
    )
    assert estimator.format_money_range(1250, 1250, "USD", "en") == "$12.50"
    assert estimator.format_weeks(Decimal(4), Decimal(7), "en") == "4–7 weeks"
    assert estimator.format_weeks(Decimal(1), Decimal(1), "en") == "1 week"


def test_titles_are_in_the_visitors_language(options):
    result = estimator.compute({"shop": 1, "marketplace": 1}, language="pl")
    assert [line.title for line in result.lines[1:]] == [
        "Sklep internetowy",
        "Integracja z Allegro",
    ]
    estimate = estimator.create_estimate({"booking": 1}, language="id")
    assert estimate.language == "id"
    assert estimate.lines[1]["title"] == "Kalender reservasi"
    assert estimate.lines[1]["weeks_min"] == "2.0"


def test_a_stored_estimate_reopens_by_its_token_and_its_lines_add_up(options):
    estimate = estimator.create_estimate(
        [{"key": "shop"}, {"key": "languages", "quantity": 3}], language="en"
    )
    again = estimator.reopen(estimate.token)
    assert again == estimate
    assert sum(line["cost_min_minor"] for line in again.lines) == again.cost_min_minor
    assert sum(Decimal(line["weeks_max"]) for line in again.lines) == again.weeks_max
    assert estimator.reopen("not-a-token-at-all") is None
    assert estimator.reopen("") is None


def test_a_later_price_change_does_not_touch_a_stored_estimate(options):
    estimate = estimator.create_estimate({"shop": 1})
    EstimatorOption.objects.filter(key="shop").update(cost_max_minor=99_999_00)
    estimate.refresh_from_db()
    assert estimate.cost_max_minor == (5000 + 20000) * 100


@pytest.mark.parametrize(
    ("selections", "message"),
    [
        ({"payments": 1}, "“Online payments” needs “Online shop”: pick it too."),
        ({"marketplace": 1, "payments": 1}, "needs “Online shop”"),
        ({"teleporter": 1}, "“teleporter” is not an option of this estimator."),
        ({"shop": 2}, "“Online shop” is picked or not: its quantity must be 1."),
        ({"languages": 11}, "The quantity of “Extra languages” must be between 1 and 10."),
        ({"languages": -1}, "must be between 1 and 10"),
        ({"languages": "two"}, "The quantity of “languages” must be a whole number."),
        ({"languages": 1.5}, "must be a whole number"),
        ({"languages": True}, "must be a whole number"),
        ([{"key": "shop"}, {"key": "shop"}], "“shop” is picked twice."),
        ([{"quantity": 1}], "Each picked option needs its key."),
        ("shop", "The picked options are not a list."),
        ({"x" * 65: 1}, "An option's key must be a short text."),
        ([{"key": f"k{i}"} for i in range(201)], "At most 200 options can be picked at once."),
    ],
)
def test_it_refuses_bad_selections_and_stores_nothing(options, selections, message):
    with pytest.raises(EstimateError) as caught:
        estimator.create_estimate(selections, language="en")
    assert message in str(caught.value)
    assert Estimate.objects.count() == 0


def test_a_withdrawn_option_cannot_be_picked(options):
    EstimatorOption.objects.filter(key="mobile").update(is_active=False)
    with pytest.raises(EstimateError, match="not an option"):
        estimator.compute({"mobile": 1})


def test_refusals_speak_the_visitors_language(options):
    from django.utils import translation

    with translation.override("pl"), pytest.raises(EstimateError) as caught:
        estimator.compute({"payments": 1}, language="pl")
    assert str(caught.value) == "„Płatności online” wymaga „Sklep internetowy”: zaznacz także to."


def test_it_refuses_an_estimate_larger_than_it_can_hold(options):
    EstimatorOption.objects.filter(key="languages").update(
        max_quantity=1000, weeks_max=Decimal("99999.9")
    )
    with pytest.raises(EstimateError, match="larger than the estimator can hold"):
        estimator.compute({"languages": 1000})


# compute() writes nothing, so the examples can share one test's option set.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.dictionaries(
        st.sampled_from(["website", "shop", "payments", "booking", "admin", "languages"]),
        st.integers(min_value=1, max_value=10),
    )
)
def test_the_lines_always_sum_to_the_totals(options, picks):
    picks = {k: (q if k == "languages" else 1) for k, q in picks.items()}
    if "payments" in picks:
        picks["shop"] = 1
    result = estimator.compute(picks)
    assert sum(line.cost_min_minor for line in result.lines) == result.cost_min_minor
    assert sum(line.cost_max_minor for line in result.lines) == result.cost_max_minor
    assert result.cost_min_minor <= result.cost_max_minor
    assert result.weeks_min <= result.weeks_max


def test_seed_demo_is_idempotent(options):
    from otomat.projects.demo import seed_demo

    seed_demo()
    seed_demo()
    assert EstimatorOption.objects.count() == len(options) == 8
    assert EstimatorSettings.objects.count() == 1
    assert EstimatorSettings.current().currency == "PLN"
    payments = EstimatorOption.objects.get(key="payments")
    assert [o.key for o in payments.requires.all()] == ["shop"]
    assert payments.text("title", "pl") == "Płatności online"
    assert payments.text("title", "id") == "Pembayaran online"
