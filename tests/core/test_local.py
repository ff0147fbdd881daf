"""Local: thread-local in sync code, context-local in async code, carried by bridges."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from asgiref_core.local import Local
from asgiref_core.sync import async_to_sync, sync_to_async

pytestmark = pytest.mark.timeout(20)


def in_thread(function: object) -> object:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(function()))  # type: ignore[operator]
    thread.start()
    thread.join(10)
    return result[0]


# -- basics ------------------------------------------------------------------


def test_set_get_delete() -> None:
    local = Local()
    local.value = 1
    assert local.value == 1
    local.value = 2
    assert local.value == 2
    del local.value
    assert not hasattr(local, "value")


def test_missing_attribute_error_names_it() -> None:
    local = Local()
    with pytest.raises(AttributeError, match="has no attribute 'missing'") as info:
        local.missing  # noqa: B018
    assert info.value.name == "missing"
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        del local.missing


def test_instances_are_independent() -> None:
    first, second = Local(), Local()
    first.value = "first"
    assert not hasattr(second, "value")


def test_subclassing_is_refused_with_a_hint() -> None:
    class Custom(Local):  # type: ignore[misc]
        pass

    with pytest.raises(TypeError, match="keep a Local instance as an attribute"):
        Custom()


def test_repr_says_which_kind() -> None:
    assert "thread_critical=False" in repr(Local())
    assert "thread_critical=True" in repr(Local(thread_critical=True))


# -- default Local ------------------------------------------------------------


def test_sync_threads_do_not_see_each_others_values() -> None:
    local = Local()
    local.value = "main"
    assert in_thread(lambda: hasattr(local, "value")) is False
    assert local.value == "main"


def test_values_follow_the_call_through_async_to_sync_and_back() -> None:
    local = Local()

    def innermost() -> str:
        seen = local.value
        local.value = "from innermost"
        return seen

    async def middle() -> tuple[str, str]:
        seen = local.value
        inner_saw = await sync_to_async(innermost)()
        return seen, inner_saw

    local.value = "from sync"
    assert async_to_sync(middle)() == ("from sync", "from sync")
    assert local.value == "from innermost"


def test_values_follow_thread_insensitive_calls_too() -> None:
    local = Local()

    def read() -> str:
        return local.value  # type: ignore[no-any-return]

    async def main() -> str:
        local.value = "async"
        return await sync_to_async(read, thread_sensitive=False)()

    assert asyncio.run(main()) == "async"


def test_async_tasks_see_values_like_context_variables() -> None:
    local = Local()

    async def child() -> bool:
        return hasattr(local, "value")

    async def main() -> tuple[bool, bool]:
        inherited = asyncio.create_task(child())
        local.value = "set after"
        later = asyncio.create_task(child())
        return await inherited, await later

    assert asyncio.run(main()) == (False, True)


def test_deleting_in_one_context_does_not_affect_another() -> None:
    local = Local()
    local.value = "shared"
    copied = contextvars.copy_context()
    copied.run(delattr, local, "value")
    assert local.value == "shared"
    assert copied.run(hasattr, local, "value") is False

    async def delete_in_task() -> None:
        del local.value

    async def main() -> str:
        await asyncio.create_task(delete_in_task())
        return local.value  # type: ignore[no-any-return]

    local.value = "kept"
    assert asyncio.run(main()) == "kept"


def test_concurrent_writers_from_many_threads() -> None:
    local = Local()

    def work(n: int) -> bool:
        for i in range(200):
            setattr(local, f"attr{i % 7}", (n, i))
            if getattr(local, f"attr{i % 7}") != (n, i):
                return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(32)))


# -- thread-critical Local ----------------------------------------------------


def test_thread_critical_values_never_leave_their_thread() -> None:
    local = Local(thread_critical=True)

    def read() -> bool:
        return hasattr(local, "value")

    async def main() -> tuple[bool, bool, bool]:
        return (
            hasattr(local, "value"),  # the loop thread is another thread
            await sync_to_async(read, thread_sensitive=False)(),
            await sync_to_async(read)(),  # back on the thread that set it
        )

    local.value = "connection"
    assert async_to_sync(main)() == (False, False, True)


def test_thread_critical_is_context_local_inside_async_code() -> None:
    local = Local(thread_critical=True)

    async def child() -> bool:
        return hasattr(local, "value")

    async def main() -> tuple[bool, str, bool]:
        local.value = "task"
        in_task = await asyncio.create_task(child())
        async_value = local.value
        del local.value
        return in_task, async_value, hasattr(local, "value")

    assert asyncio.run(main()) == (True, "task", False)


def test_thread_critical_sync_values_are_plain_thread_locals() -> None:
    local = Local(thread_critical=True)
    local.value = 1
    assert in_thread(lambda: hasattr(local, "value")) is False
    del local.value
    with pytest.raises(AttributeError, match="has no attribute 'value'"):
        del local.value
