"""The demo film blog speaks enough of the WordPress REST API and RSS for the Movie Search Bot."""

import xml.etree.ElementTree as ET

from otomat.web.demo_blog import FILMS


def test_it_pages_through_the_posts_like_wordpress(client, db):
    first = client.get("/demo/blog/wp-json/wp/v2/posts", {"per_page": 10, "page": 1, "_embed": 1})
    assert first["X-WP-Total"] == str(len(FILMS)) and first["X-WP-TotalPages"] == "2"
    posts = first.json()
    assert posts[0]["title"]["rendered"] == "The Matrix (1999)"
    assert posts[0]["_embedded"]["wp:featuredmedia"][0]["source_url"].endswith(
        "/poster/the-matrix.svg"
    )
    second = client.get("/demo/blog/wp-json/wp/v2/posts", {"per_page": 10, "page": 2}).json()
    assert len(posts) + len(second) == len(FILMS)
    assert client.get("/demo/blog/wp-json/wp/v2/posts", {"page": 9}).status_code == 400
    assert client.get("/demo/blog/wp-json/wp/v2/posts", {"page": "x"}).status_code == 400


def test_it_announces_its_api_and_feed(client, db):
    home = client.get("/demo/blog/").content.decode()
    assert 'rel="https://api.w.org/"' in home and "application/rss+xml" in home
    feed = ET.fromstring(client.get("/demo/blog/feed/").content)
    assert len(feed.findall("./channel/item")) == len(FILMS)
    page = client.get("/demo/blog/the-raid/").content.decode()
    assert 'property="og:title" content="The Raid (2011)"' in page
    assert client.get("/demo/blog/nope/").status_code == 404
    assert client.get("/demo/blog/poster/ida.svg")["Content-Type"] == "image/svg+xml"
