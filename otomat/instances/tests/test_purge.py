"""A removed instance keeps its data for the grace period, then loses it (once)."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from otomat.accounts.models import AuditEvent
from otomat.instances import services
from otomat.instances.models import Instance

TOKEN = "123456:" + "D" * 35


def test_it_deletes_the_data_after_the_grace_period(cast, greeter, settings):
    settings.TERMINATED_DATA_GRACE_DAYS = 7
    instance = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="g",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )
    instance.data_dir.mkdir(parents=True)
    (instance.data_dir / "store.sqlite3").write_text("data")
    services.remove_instance(instance, actor=cast.alice)

    assert services.purge_terminated_data() == 0
    assert instance.data_dir.exists()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert services.purge_terminated_data() == 1
        assert services.purge_terminated_data() == 0  # idempotent
    assert not instance.data_dir.exists()
    instance = Instance.objects.get(pk=instance.pk)
    assert instance.secrets == {} and instance.data_deleted_at is not None
    assert (
        AuditEvent.objects.filter(
            action="instance.data_deleted", target_id=str(instance.pk)
        ).count()
        == 1
    )


def test_running_instances_are_never_purged(cast, greeter):
    instance = services.install_instance(
        account=cast.alice.account,
        version=greeter,
        name="g",
        config={"bot_token": TOKEN},
        actor=cast.alice,
    )
    instance.data_dir.mkdir(parents=True)
    with time_machine.travel(timezone.now() + timedelta(days=400)):
        assert services.purge_terminated_data() == 0
    assert instance.data_dir.exists()
