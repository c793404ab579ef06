"""``BotContext``: everything a product's code gets from the platform for one instance."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otomat.botkit.scheduler import Scheduler
from otomat.botkit.store import Store


@dataclass(frozen=True, slots=True)
class BotContext:
    """One running instance of a product, as its code sees it.

    The host passes the same object to the product's ``build_router(ctx)`` factory and, through
    aiogram's workflow data, to every handler that declares a ``ctx: BotContext`` parameter.
    Products must keep per-instance state here (``store``) and not in module globals: in the
    ``shared`` runtime one process hosts many instances of the same product, each with its own
    context, and the router factory is called once per instance.

    ``config`` is the validated configuration, secrets included (``config["bot_token"]``): never
    log it. ``log`` writes plain lines to the process output the runtime captures (timestamps are
    added by the runtime). ``data_dir`` is private and writable; ``store`` lives inside it.

    ``scheduler`` (botkit v2) is the instance's persistent job scheduler; when not given, one is
    created over ``store`` so every host that builds a context gets it. The host drives it with
    ``await ctx.scheduler.run(bot, stop)``.
    """

    instance_id: str
    config: dict[str, Any] = field(repr=False)
    store: Store = field(repr=False)
    log: logging.Logger = field(repr=False)
    api_url: str = "https://api.telegram.org"
    data_dir: Path = Path()
    scheduler: Scheduler = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    #: Process-local per-instance scratch space (locks, caches). Not persisted: gone after a
    #: restart. Use it instead of module globals, which the shared runtime shares across
    #: instances.
    local: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.scheduler is None:
            # Frozen dataclass: the one sanctioned way to fill a derived field.
            object.__setattr__(self, "scheduler", Scheduler(self))

    def setting(self, name: str, default: Any = None) -> Any:
        """``config[name]`` or ``default`` when the key is absent (schema defaults are usually
        filled in by the platform; this covers configurations saved before a field existed)."""
        return self.config.get(name, default)
