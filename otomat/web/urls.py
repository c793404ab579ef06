from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from otomat.web import demo_blog, health, overview, pipeline, status, views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("overview/live/", overview.overview_fragment, name="overview"),
    path("status/", status.status_page, name="status"),
    path("pipeline/", pipeline.pipeline, name="pipeline"),
    path("status/badge.svg", status.badge, name="status_badge"),
    path("instances/<uuid:instance_id>/health/", health.health_fragment, name="instance_health"),
    # Browsers ask for /favicon.ico on every page that names none (the API docs, the admin).
    path("favicon.ico", RedirectView.as_view(url=static("otomat/favicon.svg"), permanent=True)),
    path("demo/blog/", demo_blog.home, name="demo_blog_home"),
    path("demo/blog/wp-json/wp/v2/posts", demo_blog.posts, name="demo_blog_posts"),
    path("demo/blog/feed/", demo_blog.feed, name="demo_blog_feed"),
    path("demo/blog/poster/<slug:slug>.svg", demo_blog.poster, name="demo_blog_poster"),
    path("demo/blog/<slug:slug>/", demo_blog.film, name="demo_blog_film"),
]
