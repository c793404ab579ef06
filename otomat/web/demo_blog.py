"""A small film blog served by Otomat itself, for the demo and "try it": it speaks the WordPress
REST API (``/demo/blog/wp-json/wp/v2/posts``) and has an RSS feed, so the Movie Search Bot has a
real site to index on a machine without internet."""

from __future__ import annotations

import json
from html import escape

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

FILMS: list[tuple[str, int, str]] = [
    ("The Matrix", 1999, "the-matrix"),
    ("The Matrix Reloaded", 2003, "the-matrix-reloaded"),
    ("Spirited Away", 2001, "spirited-away"),
    ("The Raid", 2011, "the-raid"),
    ("Laskar Pelangi", 2008, "laskar-pelangi"),
    ("Ida", 2013, "ida"),
    ("Cold War", 2018, "cold-war"),
    ("Parasite", 2019, "parasite"),
    ("Inception", 2010, "inception"),
    ("Interstellar", 2014, "interstellar"),
    ("Pengabdi Setan", 2017, "pengabdi-setan"),
    ("The Pianist", 2002, "the-pianist"),
    ("Amélie", 2001, "amelie"),
    ("Seven Samurai", 1954, "seven-samurai"),
    ("Arrival", 2016, "arrival"),
    ("Dune", 2021, "dune"),
]
NAME = "Kino Malam"


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("web:demo_blog_home")).rstrip("/")


def home(request: HttpRequest) -> HttpResponse:
    base = _base(request)
    items = "".join(
        f'<li><a href="{base}/{slug}/">{escape(title)} ({year})</a></li>'
        for title, year, slug in FILMS
    )
    return HttpResponse(
        f"<!doctype html><html><head><title>{NAME}</title>"
        f'<link rel="https://api.w.org/" href="{base}/wp-json/">'
        f'<link rel="alternate" type="application/rss+xml" href="{base}/feed/"></head>'
        f"<body><h1>{NAME}</h1><p>Film reviews, every night.</p><ul>{items}</ul></body></html>"
    )


def posts(request: HttpRequest) -> HttpResponse:
    base = _base(request)
    try:
        per_page = max(1, min(100, int(request.GET.get("per_page", 10))))
        page = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        return JsonResponse({"code": "rest_invalid_param"}, status=400)
    pages = max(1, -(-len(FILMS) // per_page))
    if page > pages:
        return JsonResponse({"code": "rest_post_invalid_page_number"}, status=400)
    chunk = FILMS[(page - 1) * per_page : page * per_page]
    body = []
    for number, (title, year, slug) in enumerate(chunk, start=(page - 1) * per_page + 1):
        post = {
            "id": number,
            "date_gmt": f"{min(year, 2024)}-06-01T20:00:00",
            "link": f"{base}/{slug}/",
            "title": {"rendered": f"{escape(title)} ({year})"},
        }
        if "_embed" in request.GET:
            post["_embedded"] = {"wp:featuredmedia": [{"source_url": f"{base}/poster/{slug}.svg"}]}
        body.append(post)
    response = HttpResponse(json.dumps(body), content_type="application/json")
    response["X-WP-Total"] = str(len(FILMS))
    response["X-WP-TotalPages"] = str(pages)
    return response


def feed(request: HttpRequest) -> HttpResponse:
    base = _base(request)
    items = "".join(
        f"<item><title>{escape(title)} ({year})</title><link>{base}/{slug}/</link></item>"
        for title, year, slug in FILMS
    )
    return HttpResponse(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{NAME}</title>'
        f"<link>{base}/</link>{items}</channel></rss>",
        content_type="application/rss+xml",
    )


def film(request: HttpRequest, slug: str) -> HttpResponse:
    base = _base(request)
    for title, year, known in FILMS:
        if known == slug:
            return HttpResponse(
                f'<!doctype html><html><head><meta property="og:title" content="{escape(title)} ({year})">'
                f'<meta property="og:url" content="{base}/{slug}/">'
                f'<meta property="og:image" content="{base}/poster/{slug}.svg">'
                f"<title>{escape(title)}</title></head><body><h1>{escape(title)} ({year})</h1></body></html>"
            )
    raise Http404


def poster(request: HttpRequest, slug: str) -> HttpResponse:
    for title, year, known in FILMS:
        if known == slug:
            svg = (
                '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="300">'
                '<rect width="200" height="300" fill="#1d2330"/>'
                f'<text x="100" y="140" fill="#fff" font-size="18" text-anchor="middle">{escape(title)}</text>'
                f'<text x="100" y="170" fill="#9ab" font-size="14" text-anchor="middle">{year}</text></svg>'
            )
            return HttpResponse(svg, content_type="image/svg+xml")
    raise Http404
