"""Business actions on instances. The only code that changes ``Instance.state``.

Every action is atomic, validates the transition against ``TRANSITIONS``, records an
:class:`InstanceEvent` with its cause and an audit event, and pokes the runner after commit (the
runner also reconciles periodically, so a lost poke only delays, never loses, an action).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.catalog.i18n import product_text
from otomat.catalog.models import ProductVersion
from otomat.catalog.schema_form import (
    ConfigError,
    split_secrets,
    telegram_bot_id,
    validate_config,
)
from otomat.instances.models import TRANSITIONS, Instance, InstanceEvent
from otomat.instances.signals import instance_data_purged, runner_needed

S = Instance.State


def poke_runner() -> None:
    """After a commit that changed what should run: the runtime (which listens, see
    ``otomat.runtime.apps``) wakes its runner at once instead of at its next periodic look."""
    runner_needed.send(sender=Instance)


class InstanceError(Exception):
    """A refused action; the message is shown to the person who asked."""


def _actor_kwargs(actor: User | None, actor_label: str) -> dict[str, Any]:
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return {"actor": actor, "actor_label": actor_label or ("" if actor else "system")}


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def transition(
    instance: Instance,
    to_state: str,
    *,
    cause: str,
    actor: User | None = None,
    actor_label: str = "",
    expected_from: set[str] | None = None,
    **fields: Any,
) -> Instance:
    """Move ``instance`` to ``to_state`` and set ``fields``, recording the cause.

    The update is conditional on the state read from the database (``UPDATE ... WHERE state=``),
    so two concurrent actions can never both apply. Raises InstanceError when the transition is
    not allowed from the current state. A transition to the current state only updates fields.
    ``fields`` may hold expressions (``generation=F("generation") + 1``): they are computed by the
    database under the row lock, and the caller's object gets the stored result. Termination
    frees the instance's bot (``live_bot_id``) for another instance.
    """
    with transaction.atomic():
        # Secrets and config are not needed to change state: deferring them saves a decryption.
        current = (
            Instance.objects.select_for_update().defer("secrets", "config").get(pk=instance.pk)
        )
        from_state = current.state
        if expected_from is not None and from_state not in expected_from:
            raise InstanceError(
                f"This action is not possible while the instance is {current.get_state_display()}."
            )
        if to_state != from_state and to_state not in TRANSITIONS[from_state]:
            raise InstanceError(
                f"An instance that is {current.get_state_display()} cannot become "
                f"{S(to_state).label}."
            )
        now = timezone.now()
        values = dict(fields)
        if to_state != from_state:
            values.update(state=to_state, state_changed_at=now)
        if to_state == S.TERMINATED:
            values["live_bot_id"] = None
        if values:
            updated = Instance.objects.filter(pk=instance.pk, state=from_state).update(**values)
            if updated != 1:  # pragma: no cover - the row lock makes this unreachable
                raise InstanceError("The instance changed meanwhile; try again.")
            computed = [name for name, value in values.items() if _is_expression(value)]
            if computed:  # still under the lock: read what the database made of them
                stored = Instance.objects.filter(pk=instance.pk).values(*computed).get()
                values.update(stored)
        if to_state != from_state:
            InstanceEvent.objects.create(
                instance=current,
                from_state=from_state,
                to_state=to_state,
                cause=cause[:300],
                **_actor_kwargs(actor, actor_label),
            )
        transaction.on_commit(poke_runner)
    # What was written is known: set it on the caller's object instead of reading it back.
    instance.state = to_state if to_state != from_state else from_state
    for name, value in values.items():
        setattr(instance, name, value)
    return instance


def bot_in_use(bot_id: str, *, account: Account, instance_id: Any = None) -> str:
    """Why the bot ``bot_id`` cannot be given to an instance of ``account`` (other than
    ``instance_id``), or "" when it can: another live instance holds it (``live_bot_id``).
    Telegram hands a bot's updates to one poller only, so both would break. A terminated
    instance frees its bot. The message names the instance only to its own account.

    This check gives the clear message; the database's unique ``live_bot_id`` is what makes two
    concurrent claims impossible (see :func:`_holding_bot`)."""
    holders = Instance.objects.filter(live_bot_id=bot_id)
    if instance_id is not None:
        holders = holders.exclude(pk=instance_id)
    holder = holders.only("name", "account_id").first()
    if holder is None:
        return ""
    if holder.account_id == account.pk:
        return _(
            "This bot already runs in your instance “%(name)s”. A bot can serve one "
            "instance: remove that one first, or create another bot with @BotFather."
        ) % {"name": holder.name}
    return _bot_taken_message()


def _bot_taken_message() -> str:
    return _(
        "This bot is already in use here. A bot can serve one instance: create "
        "another bot with @BotFather."
    )


def _claim_bot(
    schema: dict[str, Any], config: dict[str, Any], *, account: Account, instance: Instance | None
) -> tuple[str, str]:
    """The token field and bot id of ``config`` (("", "") when it has none). Raises ConfigError
    on that field when another live instance holds the bot (see :func:`bot_in_use`)."""
    field, bot_id = telegram_bot_id(schema, config)
    if not bot_id:
        return "", ""
    refusal = bot_in_use(bot_id, account=account, instance_id=instance.pk if instance else None)
    if refusal:
        raise ConfigError({field: [refusal]})
    return field, bot_id


# MariaDB/MySQL's "Deadlock found when trying to get lock".
_MYSQL_DEADLOCK = 1213


@contextmanager
def _holding_bot(field: str, bot_id: str, *, account: Account, instance_id: Any) -> Iterator[None]:
    """Run a write that sets ``live_bot_id`` in a savepoint and turn the unique constraint's
    refusal into the same ConfigError as :func:`bot_in_use`: the check before the write passed,
    but a concurrent transaction claimed the bot first. The savepoint keeps the caller's
    transaction usable (PostgreSQL aborts a transaction after an error); the caller's rollback
    then stores nothing."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if not bot_id:
            raise
        # The winner is visible on READ COMMITTED (PostgreSQL); MariaDB's repeatable-read
        # snapshot may hide it, and then the message does not name it.
        refusal = bot_in_use(bot_id, account=account, instance_id=instance_id)
        raise ConfigError({field: [refusal or _bot_taken_message()]}) from exc
    except OperationalError as exc:
        # On MariaDB the loser of two concurrent claims can also be chosen as a deadlock
        # victim: it waits on the winner's unique bot id while the winner's next UPDATE waits
        # on the loser's freshly inserted index entries. InnoDB has then rolled back its whole
        # transaction (so nothing can be read to name the winner); the claim is refused alike.
        if not bot_id or connection.vendor != "mysql" or exc.args[:1] != (_MYSQL_DEADLOCK,):
            raise
        raise ConfigError({field: [_bot_taken_message()]}) from exc


@transaction.atomic
def create_instance(
    *,
    account: Account,
    version: ProductVersion,
    name: str,
    config: dict[str, Any],
    actor: User | None,
) -> Instance:
    """Validate ``config`` against the version's schema, encrypt its secrets and record a new
    pending instance. Raises ConfigError (field → messages) or InstanceError."""
    if account.status != Account.Status.ACTIVE:
        raise InstanceError(account.closed_message or "This account is closed to new orders.")
    if not version.product.is_listed and not (actor and actor.is_staff):
        raise InstanceError("This product is not available.")
    # Unnamed: the product's name in the language of the person installing it.
    name = (name or "").strip() or product_text(version, "name")
    if len(name) > 100:
        raise InstanceError("The name is too long (100 characters at most).")
    validate_config(version.config_schema, config)
    field, bot_id = _claim_bot(version.config_schema, config, account=account, instance=None)
    public, secret = split_secrets(version.config_schema, config)
    with _holding_bot(field, bot_id, account=account, instance_id=None):
        instance = Instance.objects.create(
            account=account,
            version=version,
            name=name,
            config=public,
            secrets=secret,
            bot_id=bot_id,
            live_bot_id=bot_id or None,
            created_by=actor if actor and actor.is_authenticated else None,
        )
    InstanceEvent.objects.create(
        instance=instance,
        from_state="",
        to_state=S.PENDING,
        cause="created",
        actor=instance.created_by,
    )
    record_audit(
        "instance.created",
        actor=actor,
        account=account,
        target=instance,
        data={"product": version.product.slug, "version": version.version},
    )
    return instance


def provision_instance(
    instance: Instance,
    *,
    actor: User | None = None,
    actor_label: str = "",
    cause: str = "provisioned",
) -> Instance:
    """Ask the runner to run the instance, or to replace what runs (a new generation): any
    non-terminated state → provisioning. The generation is bumped by the database under the row
    lock, never computed from ``instance`` (a caller's copy may be stale: two concurrent
    callers would then ask for the same generation and the runner would keep the first)."""
    transition(
        instance,
        S.PROVISIONING,
        cause=cause,
        actor=actor,
        actor_label=actor_label,
        expected_from={S.PENDING, S.STOPPED, S.FAILED, S.SUSPENDED, S.PROVISIONING, S.RUNNING},
        desired=Instance.Desired.RUNNING,
        status_message="",
        restarts=0,
        generation=F("generation") + 1,
    )
    record_audit(
        "instance.provisioned",
        actor=actor,
        actor_label=actor_label,
        account=instance.account,
        target=instance,
        data={"cause": cause},
    )
    return instance


def install_instance(
    *, account: Account, version: ProductVersion, name: str, config: dict[str, Any], actor: User
) -> Instance:
    """The customer's "install" of a free product: create and provision at once. A product
    sold by subscription (it has plans) is ordered through ``billing.subscriptions.place_order``
    instead, and this refuses it. Raises ConfigError or InstanceError, storing nothing."""
    if version.product.plans.filter(is_active=True).exists():
        raise InstanceError("This product is sold by subscription: choose a plan to order it.")
    with transaction.atomic():
        instance = create_instance(
            account=account, version=version, name=name, config=config, actor=actor
        )
        provision_instance(instance, actor=actor, cause="installed")
    return instance


def start_instance(instance: Instance, *, actor: User | None, actor_label: str = "") -> Instance:
    is_staff = bool(actor and actor.is_staff)
    if instance.state == S.SUSPENDED and not is_staff:
        raise InstanceError("This instance is suspended; it starts again when the suspension ends.")
    if instance.state == S.PENDING and not is_staff:
        # A pending instance waits for its first payment; billing provisions it when paid.
        raise InstanceError("This instance starts once its order is paid.")
    if instance.state in (S.RUNNING, S.PROVISIONING):
        raise InstanceError("The instance is already running.")
    if instance.state == S.SUSPENDED:
        # Staff starting a suspended instance lifts the suspension, as its Unsuspend would.
        unsuspend_instance(
            instance,
            source=SuspensionSource.STAFF,
            reason="started by staff",
            actor=actor,
            actor_label=actor_label,
        )
        if instance.state != S.STOPPED:  # it was running before the suspension: it is again
            return instance
    return provision_instance(instance, actor=actor, actor_label=actor_label, cause="started")


def stop_instance(instance: Instance, *, actor: User | None, actor_label: str = "") -> Instance:
    transition(
        instance,
        S.STOPPED,
        cause="stopped",
        actor=actor,
        actor_label=actor_label,
        expected_from={S.RUNNING, S.PROVISIONING, S.FAILED},
        desired=Instance.Desired.STOPPED,
        pid=None,
    )
    record_audit(
        "instance.stopped",
        actor=actor,
        actor_label=actor_label,
        account=instance.account,
        target=instance,
    )
    return instance


def restart_instance(instance: Instance, *, actor: User | None, actor_label: str = "") -> Instance:
    if instance.state not in (S.RUNNING, S.PROVISIONING, S.FAILED):
        raise InstanceError("Only a running or failed instance can be restarted; start it instead.")
    return provision_instance(instance, actor=actor, actor_label=actor_label, cause="restarted")


def update_config(
    instance: Instance, *, config: dict[str, Any], actor: User | None, actor_label: str = ""
) -> Instance:
    """Replace the configuration (already merged with kept secrets by the caller), re-validated;
    a running instance is restarted to apply it. Raises ConfigError or InstanceError, storing
    nothing.

    Everything is decided on the locked row, not on ``instance`` (the caller's copy may be
    stale): the bot is claimed in the same transaction, and the new settings get a new
    generation computed by the database, so of two overlapping changes the runner always ends
    up running the one stored last."""
    if instance.state == S.TERMINATED:
        raise InstanceError("A removed instance cannot be changed.")
    schema = instance.version.config_schema
    validate_config(schema, config)
    public, secret = split_secrets(schema, config)
    account = instance.account
    with transaction.atomic():
        # Only the instance's row: a join here would lock its account's row too.
        locked = Instance.objects.select_for_update().get(pk=instance.pk)
        if locked.state == S.TERMINATED:
            raise InstanceError("A removed instance cannot be changed.")
        if locked.version_id != instance.version_id:
            raise InstanceError("The instance was upgraded meanwhile; open its settings again.")
        field, bot_id = _claim_bot(schema, config, account=account, instance=locked)
        changed = sorted(
            key
            for key in set(public) | set(locked.config)
            if public.get(key) != locked.config.get(key)
        )
        secrets_changed = secret != locked.secrets
        restart = locked.desired == Instance.Desired.RUNNING
        values: dict[str, Any] = {
            "config": public,
            "secrets": secret,
            "bot_id": bot_id,
            "live_bot_id": bot_id or None,
        }
        if not restart:  # provision_instance bumps it for a running instance
            values["generation"] = F("generation") + 1
        with _holding_bot(field, bot_id, account=account, instance_id=locked.pk):
            # Saved with the model field's own conversion (secrets are encrypted on the way).
            Instance.objects.filter(pk=locked.pk).update(**values)
        record_audit(
            "instance.config_changed",
            actor=actor,
            actor_label=actor_label,
            account=account,
            target=locked,
            # Names of changed fields only: values may be personal, secrets are never logged.
            data={"fields": changed, "secrets_changed": secrets_changed},
        )
        if restart:
            provision_instance(
                locked, actor=actor, actor_label=actor_label, cause="configuration changed"
            )
        else:
            transaction.on_commit(poke_runner)
    instance.refresh_from_db()
    return instance


def upgrade_instance(
    instance: Instance, version: ProductVersion, *, actor: User | None, actor_label: str = ""
) -> Instance:
    """Move the instance to another version of its product (a fix shipped as a new version):
    its settings are checked against the new version's schema, and a running instance restarts
    on it. Raises InstanceError (other product, terminated, settings the new version refuses)."""
    if version.product_id != instance.version.product_id:
        raise InstanceError("That version belongs to another product.")
    if instance.state == S.TERMINATED:
        raise InstanceError("A removed instance cannot be upgraded.")
    if version.pk == instance.version_id:
        raise InstanceError("The instance already runs this version.")
    try:
        validate_config(version.config_schema, instance.full_config())
    except ConfigError as exc:
        fields = ", ".join(sorted(exc.errors)) if hasattr(exc, "errors") else str(exc)
        raise InstanceError(
            f"Version {version.version} needs other settings ({fields}); change them first."
        ) from None
    with transaction.atomic():
        locked = Instance.objects.select_for_update().get(pk=instance.pk)
        old = locked.version
        public, secret = split_secrets(version.config_schema, locked.full_config())
        locked.version, locked.config, locked.secrets = version, public, secret
        locked.generation = F("generation") + 1
        locked.save(update_fields=["version", "config", "secrets", "generation"])
        locked.refresh_from_db(fields=["generation"])
        record_audit(
            "instance.upgraded",
            actor=actor,
            actor_label=actor_label,
            account=locked.account,
            target=locked,
            data={"from": old.version, "to": version.version},
        )
        if locked.desired == Instance.Desired.RUNNING:
            provision_instance(
                locked,
                actor=actor,
                actor_label=actor_label,
                cause=f"upgraded {old.version} → {version.version}",
            )
        else:
            InstanceEvent.objects.create(
                instance=locked,
                from_state=locked.state,
                to_state=locked.state,
                cause=f"upgraded {old.version} → {version.version}",
                **_actor_kwargs(actor, actor_label),
            )
    instance.refresh_from_db()
    return instance


# The fields a suspension sets, as they are once it is lifted.
_NOT_SUSPENDED = {"suspension_source": "", "suspension_reason": "", "desired_before_suspension": ""}


class SuspensionSource:
    BILLING = "billing"  # unpaid invoices; lifted by billing when they are paid
    STAFF = "staff"  # abuse or a staff decision; lifted only by staff


# The states a suspension can start from (a pending instance has not run yet; a terminated one
# is gone).
SUSPENDABLE = frozenset({S.RUNNING, S.PROVISIONING, S.STOPPED, S.FAILED})


def _suspension_args(source: str, reason: str) -> str:
    """``reason`` as stored; raises InstanceError for an unknown source or an empty reason."""
    if source not in (SuspensionSource.BILLING, SuspensionSource.STAFF):
        raise InstanceError(f"Unknown suspension source {source!r}.")
    reason = (reason or "").strip()[:300]
    if not reason:
        raise InstanceError("Say why the instance is suspended; the customer sees the reason.")
    return reason


def suspend_instance(
    instance: Instance,
    *,
    source: str,
    reason: str,
    actor: User | None = None,
    actor_label: str = "",
) -> Instance:
    """Stop the instance and keep its data, recording who suspended it and why (shown to the
    customer). Suspending an already suspended instance only records a staff suspension over a
    billing one (so paying does not lift it). Raises InstanceError for a terminated or pending
    instance. :func:`suspend_instances` does the same for many instances at once."""
    reason = _suspension_args(source, reason)
    with transaction.atomic():
        current = (
            Instance.objects.select_for_update()
            .select_related("account")
            .defer("secrets", "config")
            .get(pk=instance.pk)
        )
        if current.state == S.SUSPENDED:
            if source != SuspensionSource.STAFF or current.suspension_source == source:
                instance.refresh_from_db()
                return instance
            Instance.objects.filter(pk=current.pk).update(
                suspension_source=source, suspension_reason=reason
            )
        else:
            transition(
                current,
                S.SUSPENDED,
                cause=f"suspended ({source}): {reason}",
                actor=actor,
                actor_label=actor_label,
                expected_from=set(SUSPENDABLE),
                desired=Instance.Desired.STOPPED,
                desired_before_suspension=current.desired,
                suspension_source=source,
                suspension_reason=reason,
                pid=None,
            )
        record_audit(
            "instance.suspended",
            actor=actor,
            actor_label=actor_label,
            account=current.account,
            target=current,
            data={"source": source, "reason": reason},
        )
    instance.refresh_from_db()
    return instance


def suspend_instances(
    reasons: Mapping[Any, str],
    *,
    source: str,
    actor: User | None = None,
    actor_label: str = "",
) -> set[Any]:
    """:func:`suspend_instance` for many instances at once (billing's daily dunning run), with
    a constant number of statements: ``reasons`` maps instance ids to the reason each customer
    is shown. Every instance gets what ``suspend_instance`` would give it — the same state and
    fields, event and audit row — and the runner is poked once after commit.

    Returns the ids whose suspension was recorded. An instance that cannot be suspended
    (pending, terminated, or missing) is skipped, as is one already suspended, unless staff
    take over a billing suspension. Raises InstanceError, changing nothing, for an unknown
    source or an empty reason. Call inside the caller's transaction or alone; it is atomic."""
    from otomat.accounts.models import AuditEvent  # the audit rows in bulk, as record_audit

    stored = {pk: _suspension_args(source, reason) for pk, reason in reasons.items()}
    if not stored:
        return set()
    kwargs = _actor_kwargs(actor, actor_label)
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Instance.objects.select_for_update()
            .filter(pk__in=list(stored))
            .values_list("pk", "state", "suspension_source", "account_id", "name")
        )
        suspend = [row for row in rows if row[1] in SUSPENDABLE]
        take_over = [
            row
            for row in rows
            if row[1] == S.SUSPENDED
            and source == SuspensionSource.STAFF
            and row[2] != SuspensionSource.STAFF
        ]

        def reason_of(ids: list[Any]) -> Case:
            return Case(*[When(pk=pk, then=Value(stored[pk])) for pk in ids], default=Value(""))

        if suspend:
            ids = [row[0] for row in suspend]
            # The rows are locked, so ``state IN`` only restates what was read; each keeps what
            # it should do once the suspension ends.
            updated = Instance.objects.filter(pk__in=ids, state__in=SUSPENDABLE).update(
                state=S.SUSPENDED,
                state_changed_at=now,
                desired_before_suspension=F("desired"),
                desired=Instance.Desired.STOPPED,
                suspension_source=source,
                suspension_reason=reason_of(ids),
                pid=None,
            )
            if updated != len(ids):  # pragma: no cover - the row lock makes this unreachable
                raise InstanceError("An instance changed meanwhile; try again.")
            InstanceEvent.objects.bulk_create(
                InstanceEvent(
                    instance_id=pk,
                    at=now,
                    from_state=state,
                    to_state=S.SUSPENDED,
                    cause=f"suspended ({source}): {stored[pk]}"[:300],
                    **kwargs,
                )
                for pk, state, _source, _account, _name in suspend
            )
            transaction.on_commit(poke_runner)
        if take_over:
            ids = [row[0] for row in take_over]
            Instance.objects.filter(pk__in=ids).update(
                suspension_source=source, suspension_reason=reason_of(ids)
            )
        AuditEvent.objects.bulk_create(
            AuditEvent(
                at=now,
                action="instance.suspended",
                account_id=account_id,
                target_type=Instance._meta.label_lower,
                target_id=str(pk),
                target_repr=name[:200],
                data={"source": source, "reason": stored[pk]},
                **kwargs,
            )
            for pk, _state, _source, account_id, name in suspend + take_over
        )
    return {row[0] for row in suspend + take_over}


def unsuspend_instance(
    instance: Instance,
    *,
    source: str,
    reason: str,
    actor: User | None = None,
    actor_label: str = "",
) -> bool:
    """Lift a suspension made by ``source`` and return the instance to what it did before
    (running again, or stopped if the customer had stopped it). Returns False and changes
    nothing when the instance is not suspended or was suspended by someone else (billing never
    lifts a staff suspension); staff may lift any suspension."""
    with transaction.atomic():
        current = Instance.objects.select_for_update().get(pk=instance.pk)
        if current.state != S.SUSPENDED:
            return False
        if current.suspension_source != source and source != SuspensionSource.STAFF:
            return False
        cause = f"suspension lifted ({source}): {reason}"[:300]
        if current.desired_before_suspension == Instance.Desired.STOPPED:
            transition(
                current,
                S.STOPPED,
                cause=cause,
                actor=actor,
                actor_label=actor_label,
                expected_from={S.SUSPENDED},
                **_NOT_SUSPENDED,
            )
        else:
            Instance.objects.filter(pk=current.pk).update(**_NOT_SUSPENDED)
            current.refresh_from_db()
            provision_instance(current, actor=actor, actor_label=actor_label, cause=cause)
        record_audit(
            "instance.unsuspended",
            actor=actor,
            actor_label=actor_label,
            account=current.account,
            target=current,
            data={"source": source, "reason": reason},
        )
    instance.refresh_from_db()
    return True


@transaction.atomic
def remove_instance(
    instance: Instance, *, actor: User | None, actor_label: str = "", cause: str = "removed"
) -> Instance:
    """Terminate: stop it for good. Data is kept for TERMINATED_DATA_GRACE_DAYS, then deleted."""
    transition(
        instance,
        S.TERMINATED,
        cause=cause,
        actor=actor,
        actor_label=actor_label,
        desired=Instance.Desired.STOPPED,
        terminated_at=timezone.now(),
        pid=None,
    )
    from otomat.instances.signals import instance_terminated

    instance_terminated.send(sender=Instance, instance=instance, cause=cause)
    record_audit(
        "instance.removed",
        actor=actor,
        actor_label=actor_label,
        account=instance.account,
        target=instance,
        data={"cause": cause} if cause != "removed" else None,
    )
    return instance


def purge_terminated_data(*, now=None) -> int:
    """Delete the data directories of instances terminated longer than the grace period ago.
    Idempotent; returns how many were purged."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.TERMINATED_DATA_GRACE_DAYS)
    purged = 0
    due = Instance.objects.filter(
        state=S.TERMINATED, terminated_at__lte=cutoff, data_deleted_at__isnull=True
    ).only("id", "account_id", "name")
    from otomat.botdata.models import Job, KeyValue

    for instance in due.iterator(chunk_size=200):
        shutil.rmtree(instance.data_dir, ignore_errors=True)
        # Shared-runtime instances keep their data in the platform database.
        KeyValue.objects.filter(instance_id=str(instance.pk)).delete()
        Job.objects.filter(instance_id=str(instance.pk)).delete()
        claimed = Instance.objects.filter(pk=instance.pk, data_deleted_at__isnull=True).update(
            data_deleted_at=now, secrets={}
        )
        if claimed:
            purged += 1
            instance_data_purged.send(sender=Instance, instance_id=str(instance.pk))
            record_audit(
                "instance.data_deleted",
                actor_label="system:scheduler",
                account=instance.account,
                target=instance,
                data={"reason": f"terminated over {settings.TERMINATED_DATA_GRACE_DAYS} days ago"},
            )
    return purged


__all__ = [
    "ConfigError",
    "InstanceError",
    "SuspensionSource",
    "create_instance",
    "install_instance",
    "provision_instance",
    "purge_terminated_data",
    "remove_instance",
    "restart_instance",
    "start_instance",
    "stop_instance",
    "suspend_instance",
    "suspend_instances",
    "transition",
    "unsuspend_instance",
    "update_config",
]
