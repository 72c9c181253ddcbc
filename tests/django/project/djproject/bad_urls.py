"""Websocket routes that cannot work: the system checks and the first request must say so."""

from django.urls import path
from django.urls import re_path
from djchat import views
from djchat.sockets import chat
from djchat.sockets import echo

urlpatterns = [
    path("health/", views.health),
    path("ws/<int:number>/", chat),  # Chat.on_handshake takes `room`, not `number`
    re_path(r"^ws/unnamed/(\d+)/$", echo),  # an unnamed group cannot become a keyword argument
]
