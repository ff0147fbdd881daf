"""The ASGI application: Django for HTTP, the chat consumer for WebSockets.

Django must be configured before this module is imported (a settings module,
or ``settings.configure()`` as the test suite's conftest.py does).
"""

from __future__ import annotations

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

# Set Django up (and load the models) before importing the consumer.
django_application = get_asgi_application()

from chat.consumers import ChatConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([path("ws/chat/<slug:room>/", ChatConsumer.as_asgi())]),
    }
)
