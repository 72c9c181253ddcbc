from django.conf import settings
from django.db import models


class Message(models.Model):
    """One line said in a room."""

    room = models.SlugField(max_length=50)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.CharField(max_length=1000)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]
        indexes = [models.Index(fields=["room", "created"])]

    def line(self) -> str:
        return f"{self.author.get_username()}: {self.text}"
