import os

import django
from django.shortcuts import render


def home(request):
    """GET shows the page; POST (CSRF-protected) greets."""
    return render(request, "mysite/home.html", {
        "django_version": django.get_version(),
        "pid": os.getpid(),
        "multithread": request.META["wsgi.multithread"],
        "multiprocess": request.META["wsgi.multiprocess"],
        "name": request.POST.get("name", ""),
    })
