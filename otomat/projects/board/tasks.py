"""Background entry points; each calls one service and is safe to run twice."""

from django_tasks import task


@task()
def remind_releases_task() -> int:
    """Remind clients of tomorrow's production releases (each once)."""
    from otomat.projects.board.releases import remind_releases

    return remind_releases()
