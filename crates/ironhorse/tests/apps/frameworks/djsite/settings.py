"""A minimal Django project for tests/frameworks.rs: no database, CSRF on."""
DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "ironhorse-tests-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"
ROOT_URLCONF = "djsite.urls"
WSGI_APPLICATION = "djsite.wsgi.application"
INSTALLED_APPS = [
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES = {}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": False,
        "OPTIONS": {"context_processors": ["django.template.context_processors.csrf"]},
    }
]
STATIC_URL = "/static/"
USE_TZ = True
# Uploads above 2.5 MB go to a temporary file, as in production.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2621440
LOGGING_CONFIG = None
