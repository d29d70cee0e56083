"""WSGI entry point of the example Django project.

Run from the repository root (./scripts/venv.sh makes .venv with Django):

    ./target/debug/ironhorse mysite.wsgi --chdir examples/django_project --virtualenv .venv --static /static=$(.venv/bin/python -c 'import django, os; print(os.path.dirname(django.__file__))')/contrib/admin/static

(`mysite.wsgi` means `mysite.wsgi:application`; the --static folder is the admin's static
files inside the venv's Django, e.g. .venv/lib/python3.11/site-packages/django/contrib/admin/static.)
Then open http://127.0.0.1:8000/. For the admin's pages, create the database first:

    .venv/bin/python examples/django_project/manage.py migrate
    .venv/bin/python examples/django_project/manage.py createsuperuser
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
