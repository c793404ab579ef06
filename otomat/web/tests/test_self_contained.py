"""A self-hosted installation needs nothing from outside: the API docs load their assets from this
server, and every page has an icon."""

from __future__ import annotations

import re

import pytest


@pytest.mark.django_db
def test_api_docs_load_their_assets_from_this_server(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui-bundle.js" in source for source in sources), sources
    outside = [source for source in sources if re.match(r"(?:https?:)?//", source)]
    assert outside == []
    for source in sources:
        if source.endswith((".js", ".css")):
            assert client.get(source).status_code == 200, source


@pytest.mark.django_db
def test_favicon_is_served(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body.startswith(b"<svg")
    assert 'rel="icon"' in client.get("/").content.decode()
