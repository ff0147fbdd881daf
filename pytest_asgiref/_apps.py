"""Load an application from ``"package.module:attribute"`` and tell ASGI from WSGI.

Errors are :class:`AppError` with a message that names the value and what
went wrong; the caller adds the test and where the value came from.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Final, Literal

__all__ = ["AppError", "AppKind", "as_asgi3", "classify", "load_app"]

AppKind = Literal["asgi", "wsgi"]

_ASGI_SHAPE: Final = "an ASGI app is 'async def app(scope, receive, send)'"
_WSGI_SHAPE: Final = "a WSGI app is 'def app(environ, start_response)'"


class AppError(Exception):
    """The value does not name or is not a usable application."""


def load_app(path: str) -> object:
    """Import ``"package.module:attribute"``; ``attribute`` may be dotted.

    A trailing ``()`` calls the attribute with no arguments, for application
    factories (``"myproject.app:create_app()"``).
    """
    module_name, colon, attribute = path.partition(":")
    module_name, attribute = module_name.strip(), attribute.strip()
    if not colon or not module_name or not attribute:
        msg = (
            f"{path!r} is not an application path; write it as "
            "'package.module:attribute', for example 'myproject.asgi:application'"
        )
        raise AppError(msg)
    factory = attribute.endswith("()")
    if factory:
        attribute = attribute[:-2]
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        msg = f"{path!r}: cannot import module {module_name!r} ({error})"
        raise AppError(msg) from error
    except Exception as error:
        msg = (
            f"{path!r}: importing module {module_name!r} raised "
            f"{type(error).__name__}: {error}"
        )
        raise AppError(msg) from error
    walked = module_name
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            msg = f"{path!r}: {walked!r} has no attribute {part!r}"
            raise AppError(msg) from None
        walked = f"{walked}:{part}" if walked == module_name else f"{walked}.{part}"
    if factory:
        if not callable(target):
            msg = f"{path!r}: {walked!r} is not callable, so it cannot be a factory"
            raise AppError(msg)
        try:
            target = target()
        except Exception as error:
            msg = (
                f"{path!r}: calling the factory raised {type(error).__name__}: {error}"
            )
            raise AppError(msg) from error
    return target


def _is_coroutine_callable(app: object) -> bool:
    if inspect.iscoroutinefunction(app):
        return True
    # The caller checked callable(app), so its type defines __call__.
    return not inspect.isclass(app) and inspect.iscoroutinefunction(type(app).__call__)


def _positional_count(app: object) -> int | None:
    """How many positional arguments ``app`` takes, or None if unknowable."""
    try:
        signature = inspect.signature(app)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


def classify(app: object) -> AppKind:
    """Whether ``app`` is an ASGI (3 or 2) or a WSGI application.

    Coroutine callables are ASGI. Otherwise the number of positional
    parameters decides: two is WSGI's ``(environ, start_response)``, three
    is an ASGI 3 callable that returns an awaitable without being ``async
    def``, one is an ASGI 2 double callable. asgiref's explicit
    ``_asgi_single_callable`` / ``_asgi_double_callable`` flags win.
    """
    if not callable(app):
        msg = f"{app!r} is not callable: {_ASGI_SHAPE}, {_WSGI_SHAPE}"
        raise AppError(msg)
    if getattr(app, "_asgi_single_callable", False) or getattr(
        app, "_asgi_double_callable", False
    ):
        return "asgi"
    if _is_coroutine_callable(app):
        return "asgi"
    if isinstance(app, functools.partial) and _is_coroutine_callable(app.func):
        return "asgi"
    count = _positional_count(app)
    if count in (1, 3):
        return "asgi"
    if count == 2:
        return "wsgi"
    shape = "an unknown number of" if count is None else f"{count}"
    msg = (
        f"{app!r} is neither an ASGI nor a WSGI application: it takes {shape} "
        f"positional arguments; {_ASGI_SHAPE}, {_WSGI_SHAPE}. If it is one of "
        "them, say which with the marker option kind='asgi' or kind='wsgi'"
    )
    raise AppError(msg)


def as_asgi3(app: Any) -> Any:
    """``app``, an ASGI application, in a form the communicators call as ASGI 3.

    Like asgiref, the communicators take any callable that is not a coroutine
    function for an ASGI 2 double callable. :func:`classify` also accepts a
    plain function of three arguments that returns an awaitable; such an app
    gets a thin ``async def`` around it so that it is called as ASGI 3.
    """
    if (
        inspect.isclass(app)
        or getattr(app, "_asgi_single_callable", False)
        or getattr(app, "_asgi_double_callable", False)
        or _is_coroutine_callable(app)
        or (isinstance(app, functools.partial) and _is_coroutine_callable(app.func))
    ):
        return app
    count = _positional_count(app)
    if count is None or count < 3:
        return app

    async def application(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)

    return application
