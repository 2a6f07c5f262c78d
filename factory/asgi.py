"""ASGI entry point: HTTP through Django, websockets through Channels.

Every socket passes the origin check and the session authentication before it reaches a consumer;
consumers then check the object permission before accepting. Every HTTP body passes a size guard
first: Django's ASGI handler spools the whole body to disk before any view or upload handler runs.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
# Django's docs: "When using ASGI, persistent connections should be disabled" (each request has a thread
# of its own, and a kept connection outlives it). Workers, which are not ASGI, keep theirs.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from workflows.live.routing import websocket_urlpatterns  # noqa: E402
from workflows.uploads import BodySizeGuard  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeGuard(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
