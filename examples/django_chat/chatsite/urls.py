from chat import views
from chat.sockets import chat
from django.urls import path

urlpatterns = [
    path("", views.rooms, name="rooms"),
    path("join/", views.join, name="join"),
    path("room/<slug:room>/", views.room, name="room"),
    path("room/<slug:room>/announce/", views.announce, name="announce"),
    # The websocket: a view like the others. `room` reaches Chat.on_handshake.
    path("ws/room/<slug:room>/", chat),
]
