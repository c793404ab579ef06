"""The web server's application (``otomat web`` runs it under uvicorn).

Django's own ASGI handler runs each request's synchronous middleware and view in a thread of
that request's own, so a database connection is never reused between requests (persistent
connections do not work under it): every page paid for opening SQLite again, its pragmas and
Django's functions. No view of ours is asynchronous, so the server runs Django's WSGI
application through a2wsgi's adapter instead, in a pool of threads that live as long as the
process and keep their connections (``CONN_MAX_AGE``). docs/decisions/0007-wsgi-behind-uvicorn.md
gives the figures."""

import os

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
# Threads per web process: requests that wait on the database or a provider do not hold up
# the others; CPU is one core per process whatever the number.
application = WSGIMiddleware(get_wsgi_application(), workers=10)

# The web server's sign of life for /readyz, /metrics and monitoring (otomat.ops.heartbeats),
# one per server process.
from otomat.ops import heartbeats  # noqa: E402 - needs the apps loaded above

heartbeats.start(heartbeats.Service.WEB)
