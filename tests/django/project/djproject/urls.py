from django.urls import path
from django.urls import re_path
from djchat import views
from djchat.sockets import chat
from djchat.sockets import echo

urlpatterns = [
    path("health/", views.health),
    path("login/<str:name>/", views.login_as),
    path("push/<str:room>/", views.push),
    path("ws/chat/<str:room>/", chat),
    re_path(r"^ws/echo/$", echo),
    path("ws/private/", views.private_socket),
]
