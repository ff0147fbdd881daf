"""The ``asgi_server`` fixture: a :class:`~asgiref_core.server.StatelessServer`
subclass run under test, its application instances fed and read by the test.

The harness runs the server's ``arun()`` in the background on the test's
serving loop and wraps three of its methods on the instance (never on the
class): ``get_or_create_application_instance``, to learn which scope id each
new instance belongs to; ``application_send``, to record what each instance
sends (the subclass's own delivery still runs, unless it is not implemented);
and, when the subclass has none of its own, ``handle``, which then just waits.
At teardown ``arun()`` is cancelled and the server must have cleaned up after
itself: no instance left in ``application_instances``, none still running.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_asgiref._loops import serving_loop_for
from pytest_asgiref._markers import fail_for

if TYPE_CHECKING:
    from pytest_asgiref._server_harness import ServerFactory

__all__ = ["asgi_server"]


@pytest.fixture
def asgi_server(request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """Run a ``StatelessServer`` subclass: ``server = asgi_server(MyServer)``.

    The server's ``arun()`` runs in the background on the test's loop; the
    test feeds it with ``server.send(scope_id, scope, message)`` and reads
    what each instance sends with ``server.receive(scope_id)`` (awaited in
    async tests). The subclass need not implement ``handle()`` or
    ``application_send()`` for that. At teardown the server is stopped, and
    the test fails if it left application instances behind or an instance
    raised an error the test never received.
    """
    from pytest_asgiref._server_harness import ServerFactory

    loop = serving_loop_for(request)
    factory = ServerFactory(request, loop)
    yield factory
    problems = loop.run(factory.close_all())
    if problems:
        fail_for(request.node, "\n".join(problems))
