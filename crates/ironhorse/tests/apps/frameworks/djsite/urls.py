from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("users/<int:user_id>", views.user),
    path("hello/<str:name>", views.hello),
    path("json", views.query_echo),
    path("form", views.form_echo),
    path("upload", views.upload),
    path("cookies/set", views.cookie_set),
    path("cookies/get", views.cookie_get),
    path("redirect", views.go),
    path("target", views.target),
    path("stream", views.stream),
    path("csrf-form", views.csrf_form),
]
