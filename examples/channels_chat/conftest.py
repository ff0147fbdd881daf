"""Configure Django for the tests: a throwaway SQLite file, the chat app.

A real project would name a settings module instead; the application and the
tests would not change.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections


def pytest_configure(config):
    database_dir = Path(tempfile.mkdtemp(prefix="channels-chat-"))
    config.add_cleanup(lambda: shutil.rmtree(database_dir, ignore_errors=True))
    settings.configure(
        SECRET_KEY="only-for-tests",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=["chat"],
        MIDDLEWARE=[],
        ROOT_URLCONF="chat.urls",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        # A file, not ":memory:": the consumer reaches the database from
        # other threads, each with a connection of its own.
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": database_dir / "chat.sqlite3",
            }
        },
        # Tests that ask for asgi_channel_layer get a fresh layer of their own.
        CHANNEL_LAYERS={
            "default": {"BACKEND": "asgiref_core.inmemory.InMemoryChannelLayer"}
        },
    )
    django.setup()
    # The chat app has no migrations: create its tables straight from the model.
    call_command("migrate", run_syncdb=True, verbosity=0)
    connections.close_all()


@pytest.fixture(autouse=True)
def empty_database():
    """Every test starts with no messages."""
    from chat.models import Message  # noqa: PLC0415 - Django is set up by now

    Message.objects.all().delete()
    yield
    connections.close_all()
