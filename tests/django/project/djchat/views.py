"""Plain views of the test project: log in, push to a room, and a websocket behind login_required."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

import syncaerys.django

from .sockets import chat
from .sockets import private


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def login_as(request: HttpRequest, name: str) -> HttpResponse:
    """Test-only: log in as ``name`` (made if needed); the session cookie comes back."""
    user, _ = get_user_model().objects.get_or_create(username=name)
    login(request, user)
    return HttpResponse(f"logged in as {name}")


@csrf_exempt
def push(request: HttpRequest, room: str) -> HttpResponse:
    """Push the request's body to a room from a plain view."""
    result = chat.endpoint.broadcast(request.body.decode(), room=room).result(timeout=5)
    return HttpResponse(str(result.delivered))


@login_required
def private_socket(request: HttpRequest) -> HttpResponseBase:
    """A view of the project's own in front of the upgrade."""
    return syncaerys.django.serve(request, private)
