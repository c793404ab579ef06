"""Runtime backends behind the interface in ``base.py``: ``process`` (one sandboxed OS process per
instance; ``sandbox.py``, ``child.py``, ``procutil.py``, ``datadir.py`` are its parts)."""
