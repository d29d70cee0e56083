"""Django Channels: HTTP to Django's ASGI handler, WebSockets to a consumer.
ironhorse djasgi.asgi_channels:application --interface asgi"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djasgi.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from djasgi.consumers import EchoConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi,
    "websocket": URLRouter([path("ws", EchoConsumer.as_asgi())]),
})
