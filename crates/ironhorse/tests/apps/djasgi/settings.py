"""A minimal Django project served over ASGI for tests/asgi_frameworks.rs: async views
(djasgi.asgi) and Channels with the in-memory channel layer (djasgi.asgi_channels)."""
DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "ironhorse-tests-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"
ROOT_URLCONF = "djasgi.urls"
ASGI_APPLICATION = "djasgi.asgi_channels.application"
INSTALLED_APPS = ["channels"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES = {}
USE_TZ = True
LOGGING_CONFIG = None
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
