"""The chat's tests, with Django's test runner and syncaerys's live-server helpers:

python examples/django_chat/manage.py test chat
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from syncaerys.django.testing import LiveServerTestCase
from syncaerys.testing import HandshakeRejected

from .models import Message


class ChatTests(LiveServerTestCase):
    def setUp(self) -> None:
        self.ann = get_user_model().objects.create_user("ann")
        self.bob = get_user_model().objects.create_user("bob")

    def test_a_message_is_stored_and_reaches_the_room(self) -> None:
        with self.websocket("/ws/room/lobby/", user=self.ann) as ann:
            self.assertEqual(ann.receive_text(), "* ann joined")
            with self.websocket("/ws/room/lobby/", user=self.bob) as bob:
                self.assertEqual(bob.receive_text(), "* bob joined")
                self.assertEqual(ann.receive_text(), "* bob joined")
                bob.send("hello ann")
                self.assertEqual(ann.receive_text(), "bob: hello ann")
                self.assertEqual(bob.receive_text(), "bob: hello ann")
            self.assertEqual(ann.receive_text(), "* bob left")
        self.assertEqual([m.line() for m in Message.objects.all()], ["bob: hello ann"])

    def test_a_newcomer_sees_the_history(self) -> None:
        Message.objects.create(room="lobby", author=self.ann, text="earlier")
        with self.websocket("/ws/room/lobby/", user=self.bob) as bob:
            self.assertEqual(bob.receive_text(), "ann: earlier")

    def test_anonymous_clients_are_refused(self) -> None:
        with self.assertRaises(HandshakeRejected) as refused:
            self.websocket("/ws/room/lobby/")
        self.assertEqual(refused.exception.status, 403)

    def test_a_view_pushes_to_the_room(self) -> None:
        with self.websocket("/ws/room/lobby/", user=self.bob) as bob:
            self.assertEqual(bob.receive_text(), "* bob joined")
            client = Client()
            client.force_login(self.ann)
            response = client.post("/room/lobby/announce/", {"text": "tea is ready"})
            self.assertEqual(response.json(), {"delivered": 1})
            self.assertEqual(bob.receive_text(), "** ann: tea is ready")
