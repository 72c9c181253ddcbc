from django.db import models


class Note(models.Model):
    """One message a client sent, stored by the handler's ORM call."""

    room = models.CharField(max_length=100)
    author = models.CharField(max_length=150)
    text = models.TextField()
