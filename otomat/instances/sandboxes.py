"""Sandboxes (staff reproduce a customer's problem) and trials ("try it" in the catalog).

Both are instances of the internal account that run on the built-in emulator, whatever Bot API
customers' bots use. A sandbox copies the product version and the *public* settings of a customer's
instance; every secret is replaced (a fresh emulator bot token, placeholders for other secrets),
so staff never need the customer's account, token or data. Both expire and are removed by the
scheduler (``expire_sandboxes``), data included.
"""

from __future__ import annotations

import copy
import shutil
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.catalog.i18n import product_text
from otomat.catalog.models import ProductVersion
from otomat.catalog.schema_form import apply_defaults, field_specs
from otomat.instances.models import Instance, InstanceEvent
from otomat.instances.services import InstanceError, provision_instance, remove_instance
from otomat.lib import emulator

PLACEHOLDER_SECRET = "sandbox-placeholder"  # noqa: S105 - a stand-in, not a secret


def internal_account() -> Account:
    account, _ = Account.objects.get_or_create(
        is_internal=True, defaults={"name": "Otomat sandboxes and trials"}
    )
    return account


def _replace_secrets(version: ProductVersion, config: dict, bot_token: str) -> dict:
    """``config`` with every secret replaced: token fields get the emulator bot's token."""
    result = copy.deepcopy(config)
    for spec in field_specs(version.config_schema):
        if not spec.secret:
            continue
        value = bot_token if spec.check == "telegram_token" else PLACEHOLDER_SECRET
        parent = result
        for key in spec.path[:-1]:
            parent = parent.setdefault(key, {})
        parent[spec.path[-1]] = value
    return result


def _create(
    *,
    version: ProductVersion,
    name: str,
    config: dict,
    kind: str,
    minutes: int,
    username: str,
    sandbox_of: Instance | None,
    actor: User | None,
) -> Instance:
    from otomat.catalog.schema_form import split_secrets, validate_config

    validate_config(version.config_schema, config)
    public, secret = split_secrets(version.config_schema, config)
    instance = Instance.objects.create(
        account=internal_account(),
        version=version,
        name=name[:100],
        config=public,
        secrets=secret,
        kind=kind,
        sandbox_of=sandbox_of,
        expires_at=timezone.now() + timedelta(minutes=minutes),
        emulator_bot=username,
        created_by=actor if actor and actor.is_authenticated else None,
    )
    InstanceEvent.objects.create(
        instance=instance,
        to_state=Instance.State.PENDING,
        cause=f"{kind} created",
        actor=instance.created_by,
        actor_label="" if instance.created_by else "visitor",
    )
    provision_instance(
        instance,
        actor=actor,
        actor_label="visitor" if actor is None else "",
        cause=f"{kind} started",
    )
    return instance


def open_sandbox(instance: Instance, *, actor: User) -> Instance:
    """Staff: start a sandbox copy of ``instance`` on the emulator. Raises InstanceError."""
    if not actor.is_staff:
        raise InstanceError("Only staff can open a sandbox.")
    if instance.kind != Instance.Kind.CUSTOMER:
        raise InstanceError("A sandbox is opened from a customer's instance.")
    try:
        username, token = emulator.create_bot("sbx", f"Sandbox of {instance.name}")
    except emulator.EmulatorUnavailable as exc:
        raise InstanceError(str(exc)) from exc
    version = instance.version
    config = _replace_secrets(
        version, apply_defaults(version.config_schema, instance.config), token
    )
    with transaction.atomic():
        sandbox = _create(
            version=version,
            name=f"Sandbox of {instance.name}",
            config=config,
            kind=Instance.Kind.SANDBOX,
            minutes=settings.SANDBOX_HOURS * 60,
            username=username,
            sandbox_of=instance,
            actor=actor,
        )
        record_audit(
            "instance.sandbox_opened",
            actor=actor,
            account=instance.account,
            target=instance,
            data={"sandbox": str(sandbox.id)},
        )
    return sandbox


def start_trial(version: ProductVersion, *, actor: User | None) -> Instance:
    """A visitor's short trial of ``version`` on the emulator, with the schema's defaults and the
    manifest's ``[try].config``. A global cap (``TRY_MAX_ACTIVE``) keeps the machine safe; the
    view allows one per browser session. Raises InstanceError with the reason."""
    active = Instance.objects.filter(kind=Instance.Kind.TRIAL).exclude(
        state=Instance.State.TERMINATED
    )
    if active.count() >= settings.TRY_MAX_ACTIVE:
        raise InstanceError(
            "Too many people are trying products right now; try again in a few minutes."
        )
    trial = version.manifest.get("try", {})
    try:
        # The chat's title: the product's name in the visitor's language.
        username, token = emulator.create_bot(
            "try", product_text(version, "name"), welcome=trial_welcome(version)
        )
    except emulator.EmulatorUnavailable as exc:
        raise InstanceError("Trying products is not available on this installation.") from exc
    config = apply_defaults(version.config_schema, _with_base_url(trial.get("config", {})))
    config = _replace_secrets(version, config, token)
    from otomat.catalog.schema_form import ConfigError

    try:
        with transaction.atomic():
            instance = _create(
                version=version,
                name=f"Trial of {version.product.name}",
                config=config,
                kind=Instance.Kind.TRIAL,
                minutes=int(trial.get("minutes", 15)),
                username=username,
                sandbox_of=None,
                actor=actor,
            )
    except ConfigError as exc:
        emulator.delete_bot(username)
        raise InstanceError(
            "This product needs setting up before it can run; install it instead."
        ) from exc
    return instance


def trial_welcome(version: ProductVersion) -> dict:
    """What a trial's chat page greets the visitor with, in every language of the platform:
    what to say first and the way back to the product. The emulator keeps it with the trial's
    bot, so the chat shows only these words, whatever its link says."""
    from django.urls import reverse
    from django.utils import translation
    from django.utils.translation import gettext as _

    hint, back_label = {}, {}
    for lang, _name in settings.LANGUAGES:
        with translation.override(lang):
            name = {"product": product_text(version, "name", lang)}
            hint[lang] = _("Say /start to try %(product)s.") % name
            back_label[lang] = _("Back to %(product)s") % name
    back = settings.BASE_URL.rstrip("/") + reverse("catalog:detail", args=[version.product.slug])
    return {"hint": hint, "back": back, "back_label": back_label}


def _with_base_url(value):
    """``[try].config`` may say ``{base_url}`` for this installation's address (e.g. the demo
    blog it serves at ``{base_url}/demo/blog/``)."""
    if isinstance(value, str):
        return value.replace("{base_url}", settings.BASE_URL)
    if isinstance(value, list):
        return [_with_base_url(item) for item in value]
    if isinstance(value, dict):
        return {key: _with_base_url(item) for key, item in value.items()}
    return value


def expire_sandboxes(*, now=None) -> int:
    """Remove sandboxes and trials past ``expires_at``, with their data and emulator bot.
    Idempotent; returns how many were removed."""
    now = now or timezone.now()
    due = Instance.objects.filter(
        kind__in=[Instance.Kind.SANDBOX, Instance.Kind.TRIAL], expires_at__lte=now
    ).exclude(state=Instance.State.TERMINATED)
    removed = 0
    for instance in due.iterator(chunk_size=100):
        try:
            remove_instance(instance, actor=None, actor_label="system:scheduler")
        except InstanceError:
            continue
        # Nothing of a sandbox or trial is worth keeping: no grace period. While a sandboxed
        # shared host still carries the instance, its data_dir is a link to the directory lent
        # to that host (docs/runtime.md): delete what it points to.
        data = instance.data_dir
        if data.is_symlink():
            shutil.rmtree(data.resolve(), ignore_errors=True)
            data.unlink(missing_ok=True)
        else:
            shutil.rmtree(data, ignore_errors=True)
        Instance.objects.filter(pk=instance.pk).update(data_deleted_at=now, secrets={})
        emulator.delete_bot(instance.emulator_bot)
        removed += 1
    return removed
