"""Background entry points; each calls one service and is safe to run twice."""

from django_tasks import task

from otomat.instances.services import purge_terminated_data


@task()
def purge_terminated_data_task() -> int:
    """Delete the data of instances removed longer than the grace period ago."""
    return purge_terminated_data()


@task()
def expire_sandboxes_task() -> int:
    """Remove sandboxes and trials whose time is up."""
    from otomat.instances.sandboxes import expire_sandboxes

    return expire_sandboxes()
