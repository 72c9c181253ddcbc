"""The chat's pages: join with a name, the rooms, a room, and an announcement pushed from a view."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import JsonResponse
from django.shortcuts import redirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from .models import Message
from .sockets import chat


def join(request: HttpRequest) -> HttpResponse:
    """A demo login: a name is enough (a real site uses django.contrib.auth's LoginView)."""
    if request.method == "POST":
        name = slugify(request.POST.get("name", ""))[:30]
        if name:
            user, _ = get_user_model().objects.get_or_create(username=name)
            login(request, user)
            target = request.POST.get("next") or "/"
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = "/"
            return redirect(target)
    return render(request, "chat/join.html", {"next": request.GET.get("next", "/")})


@login_required
def rooms(request: HttpRequest) -> HttpResponse:
    if request.GET.get("room"):
        return redirect("room", room=slugify(request.GET["room"]) or "lobby")
    names = Message.objects.values_list("room", flat=True).distinct().order_by("room")
    return render(request, "chat/rooms.html", {"rooms": list(names)})


@login_required
def room(request: HttpRequest, room: str) -> HttpResponse:
    return render(request, "chat/room.html", {"room": room})


@login_required
@require_POST
def announce(request: HttpRequest, room: str) -> JsonResponse:
    """Push to everyone in the room from a plain view (a task or a signal handler would do the same)."""
    text = request.POST.get("text", "").strip()[:200]
    result = chat.endpoint.broadcast(f"** {request.user.get_username()}: {text}", room=room).result(timeout=5)
    return JsonResponse({"delivered": result.delivered})
