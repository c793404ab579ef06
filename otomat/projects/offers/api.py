"""REST endpoints of this part of projects (registered in otomat/api/api.py)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["projects"])
