from django.urls import path

from .sockets import bench

urlpatterns = [path("", bench)]
