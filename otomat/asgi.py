import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
application = get_asgi_application()

# The web server's sign of life for /readyz, /metrics and monitoring (otomat.ops.heartbeats),
# one per server process.
from otomat.ops import heartbeats  # noqa: E402 - needs the apps loaded above

heartbeats.start(heartbeats.Service.WEB)
