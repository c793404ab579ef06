"""Per-instance bot data in the platform database: the shared runtime's ``ctx.store`` and jobs.

:class:`otomat.botdata.store.DatabaseStore` implements ``otomat.botkit.store.Store`` (and the
scheduler's job storage) on two tables namespaced by instance id. See docs/botkit.md.
"""
