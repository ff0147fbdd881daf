"""Exceptions the testing communicators raise, shared by all of them."""

from __future__ import annotations

from asgiref_core._transcript import describe_message

__all__ = ["ClientDisconnectedError", "UnexpectedMessageError", "raised_by_disconnect"]


class UnexpectedMessageError(AssertionError):
    """The application sent a message the conversation did not allow here.

    An :class:`AssertionError` so that it reads as a failed expectation in a
    test report, like the bare ``assert`` checks of other test communicators
    it replaces.
    """

    def __init__(self, expected: str, message: object, *, where: str) -> None:
        self.expected = expected
        self.message = message
        text = (
            f"{where}: expected {expected} from the application, but it sent "
            f"{describe_message(message)}"
        )
        super().__init__(text)


class ClientDisconnectedError(OSError):
    """Raised into the application by ``send()`` once the test's client is gone.

    ASGI 2.4 and later lets a server raise an :class:`OSError` subclass when an
    application sends on a closed connection; frameworks rely on it to stop
    streaming responses to clients that left.
    """


def raised_by_disconnect(error: BaseException) -> bool:
    """Whether ``error`` is, or was raised while handling, a
    :class:`ClientDisconnectedError` (frameworks often translate it)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ClientDisconnectedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
