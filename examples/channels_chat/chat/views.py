from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from chat.models import Message


def history(request: HttpRequest, room: str) -> JsonResponse:
    """A room's messages, oldest first, as JSON."""
    messages = [message.as_dict() for message in Message.objects.filter(room=room)]
    return JsonResponse({"room": room, "messages": messages})
