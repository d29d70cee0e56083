from django.urls import path

from djasgi import views

urlpatterns = [
    path("items/<int:item_id>", views.item),
    path("items", views.create),
    path("stream", views.stream),
]
