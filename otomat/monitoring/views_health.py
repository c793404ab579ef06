"""``/healthz`` and ``/readyz``, at the site root, for load balancers and orchestrators.

* ``/healthz`` — alive: this process answers HTTP. It touches nothing else (no database), so a
  slow database never gets a healthy web process restarted.
* ``/readyz`` — ready: the database answers and the runner, the worker and the scheduler
  (``OTOMAT_READY_SERVICES``) have live heartbeats. 200 when all are, 503 otherwise; the JSON
  body names what is stale either way (``otomat.monitoring.platform.readiness``).

Both are plain HTTP exempt from the HTTPS redirect and need no login; neither shows any data.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from otomat.monitoring import platform


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"ok": True})


@never_cache
@require_safe
def readyz(request):
    ready, body = platform.readiness()
    response = JsonResponse(body, status=200 if ready else 503)
    # Not an error of this server: without this Django logs every 503 at ERROR, and a probe
    # asking every few seconds while a worker is down would fill the log (and the console).
    response._has_been_logged = True
    return response
