from __future__ import annotations

from typing import Any

from django.db import models


class Message(models.Model):
    room = models.SlugField()
    author = models.CharField(max_length=40)
    text = models.TextField()
    sent = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "chat"
        ordering = ("id",)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "author": self.author, "text": self.text}
