"""The billing benchmarks' data: ``size`` running instances with an active monthly subscription
each over ``size // 10`` customer accounts, every period ending about six days after ``now``
(so the renewal invoice is due at once). Bulk-created; runs inside a Django child process."""

from __future__ import annotations


def seed_renewals(size: int, now):
    """Create the data; returns (plan, tax rate)."""
    from datetime import timedelta
    from decimal import Decimal

    from otomat.accounts.models import Account, Membership, User
    from otomat.billing.invoicing import ensure_series
    from otomat.billing.models import DunningPolicy, Plan, Subscription, TaxRate
    from otomat.catalog.models import Product, ProductVersion
    from otomat.instances.models import Instance

    product = Product.objects.create(slug="bench", name="Bench Bot")
    version = ProductVersion.objects.create(
        product=product, version="1.0", runtime="process", source_dir="x", checksum="0"
    )
    tax = TaxRate.objects.create(name="PPN 11%", rate_percent=Decimal(11), inclusive=True)
    policy = DunningPolicy.objects.create(
        name="Bench",
        invoice_days_before=7,
        reminder_days=[-3, 0, 3],
        suspend_after_days=7,
        terminate_after_days=30,
    )
    plan = Plan.objects.create(
        product=product,
        code="m",
        name="Monthly",
        currency="IDR",
        price_minor=99_000,
        tax_rate=tax,
        dunning_policy=policy,
    )
    ensure_series()
    n = max(1, size // 10)
    batch = 5000
    Account.objects.bulk_create(
        [Account(name=f"Customer {i}", currency="IDR") for i in range(n)], batch_size=batch
    )
    accounts = list(Account.objects.order_by("id"))
    User.objects.bulk_create(
        [
            User(email=f"c{i}@bench.local", password="!", language=("en", "id", "pl")[i % 3])
            for i in range(n)
        ],
        batch_size=batch,
    )
    users = list(User.objects.order_by("id"))
    Membership.objects.bulk_create(
        [Membership(account=a, user=u, role="responsible") for a, u in zip(accounts, users)],  # noqa: B905
        batch_size=batch,
    )
    anchor = now - timedelta(days=25)
    end = anchor + timedelta(days=31)
    Instance.objects.bulk_create(
        [
            Instance(
                account=accounts[i % n],
                version=version,
                name=f"bot {i}",
                state="running",
                desired="running",
            )
            for i in range(size)
        ],
        batch_size=batch,
    )
    rows = Instance.objects.order_by("id").values_list("id", "account_id")
    Subscription.objects.bulk_create(
        [
            Subscription(
                account_id=account_id,
                instance_id=instance_id,
                plan=plan,
                status="active",
                anchor_at=anchor,
                period_index=0,
                current_period_start=anchor,
                current_period_end=end,
                activated_at=anchor,
                setup_fee_charged=True,
                next_run_at=end - timedelta(days=7),
            )
            for instance_id, account_id in rows.iterator(chunk_size=batch)
        ],
        batch_size=batch,
    )
    return plan, tax
