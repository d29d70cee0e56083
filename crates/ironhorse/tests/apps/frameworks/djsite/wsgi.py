"""WSGI entry point: ironhorse djsite.wsgi:application --chdir crates/ironhorse/tests/apps/frameworks"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsite.settings")
application = get_wsgi_application()
