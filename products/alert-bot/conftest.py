"""Makes the product package importable in tests (pytest puts this folder on sys.path)."""
