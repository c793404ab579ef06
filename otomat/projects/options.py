"""The owner's side of the estimator: options (their ranges, dependencies, order, whether they
are offered) and the settings (currency, base range, the page's texts). Each change writes an
audit row; a dependency that would go round in a circle is refused."""

from __future__ import annotations

from django.db import transaction

from otomat.accounts.models import User
from otomat.accounts.services import record_audit
from otomat.projects.models import EstimatorOption, EstimatorSettings


def dependency_cycle(option: EstimatorOption, requires: list[EstimatorOption]) -> list[str]:
    """The titles along a circle that ``option`` requiring ``requires`` would close (e.g.
    ``["Payments", "Shop", "Payments"]``), or [] when there is none. Reads every option's
    dependencies once (an option set is tens of rows)."""
    edges: dict[int | None, set[int]] = {}
    for source, target in EstimatorOption.requires.through.objects.values_list(
        "from_estimatoroption_id", "to_estimatoroption_id"
    ):
        edges.setdefault(source, set()).add(target)
    me = option.pk  # None for a new option: nothing can require it yet
    edges[me] = {o.pk for o in requires}
    titles = dict(EstimatorOption.objects.values_list("pk", "title"))
    titles[me] = option.title or option.key
    if me in edges[me]:
        return [titles[me], titles[me]]
    # Depth-first from the option: a path that comes back to it is the circle.
    stack = [(target, [me, target]) for target in edges[me]]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node == me:
            return [titles.get(pk, "?") for pk in path]
        if node in seen:
            continue
        seen.add(node)
        stack += [(nxt, [*path, nxt]) for nxt in edges.get(node, ())]
    return []


@transaction.atomic
def save_option(form, *, actor: User) -> EstimatorOption:
    """Store a valid :class:`~otomat.projects.forms.OptionForm` (new or changed option)."""
    created = form.instance.pk is None
    option = form.save()
    record_audit(
        "projects.option_created" if created else "projects.option_changed",
        actor=actor,
        target=option,
        data={"key": option.key, "offered": option.is_active},
    )
    return option


@transaction.atomic
def delete_option(option: EstimatorOption, *, actor: User) -> None:
    """Delete an option; stored estimates keep their lines (they were frozen when made), and
    options that required it no longer do."""
    record_audit("projects.option_deleted", actor=actor, target=option, data={"key": option.key})
    option.delete()


@transaction.atomic
def save_settings(form, *, actor: User) -> EstimatorSettings:
    row = form.save()
    record_audit(
        "projects.estimator_settings",
        actor=actor,
        target=row,
        data={"currency": row.currency, "fields": sorted(form.changed_data)},
    )
    return row
