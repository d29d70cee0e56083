"""A one-file Django project for tests/gevent.rs: one view calls a loopback service with
urllib3, one sleeps."""
import time

import django
import urllib3
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="gevent-tests",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

HTTP = urllib3.PoolManager(maxsize=64, retries=False)


def call(request):
    upstream = request.GET["upstream"]
    answer = HTTP.request("GET", f"http://{upstream}/wait")
    return HttpResponse(f"django got {answer.status} {answer.data.decode()}")


def sleep(request):
    time.sleep(float(request.GET.get("s", "0.2")))
    return HttpResponse("django slept")


urlpatterns = [path("call", call), path("sleep", sleep)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
