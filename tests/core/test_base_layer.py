"""BaseChannelLayer: capacities, name rules, errors and the abstract API."""

from __future__ import annotations

import re
from typing import Any

import pytest

from asgiref_core.base_layer import BaseChannelLayer, ChannelFull


@pytest.fixture
def layer() -> BaseChannelLayer:
    return BaseChannelLayer()


class TestOptions:
    def test_defaults(self, layer: BaseChannelLayer) -> None:
        assert (layer.expiry, layer.capacity, layer.channel_capacity) == (60, 100, [])
        assert layer.extensions == []
        assert layer.MAX_NAME_LENGTH == 100

    @pytest.mark.parametrize(
        ("options", "error", "text"),
        [
            ({"expiry": 0}, ValueError, "'expiry' must be a positive number (got 0)"),
            (
                {"expiry": "60"},
                TypeError,
                "'expiry' must be a positive number (got '60')",
            ),
            ({"capacity": 0}, ValueError, "'capacity' must be a positive int (got 0)"),
            (
                {"capacity": 1.5},
                TypeError,
                "'capacity' must be a positive int (got 1.5)",
            ),
            (
                {"capacity": True},
                TypeError,
                "'capacity' must be a positive int (got True)",
            ),
        ],
    )
    def test_bad_option_is_refused(
        self, options: dict[str, Any], error: type[Exception], text: str
    ) -> None:
        with pytest.raises(error, match=re.escape(text)):
            BaseChannelLayer(**options)


class TestCapacities:
    def test_default_capacity_applies_without_overrides(self) -> None:
        assert BaseChannelLayer(capacity=7).get_capacity("anything") == 7

    def test_glob_patterns_match_whole_names(self) -> None:
        layer = BaseChannelLayer(channel_capacity={"http.*": 5, "ws.?": 3})
        assert layer.get_capacity("http.request") == 5
        assert layer.get_capacity("ws.a") == 3
        assert layer.get_capacity("ws.ab") == 100
        assert layer.get_capacity("xhttp.request") == 100

    def test_compiled_regexes_are_used_as_given(self) -> None:
        layer = BaseChannelLayer(channel_capacity={re.compile(r"^chat\.\d+$"): 2})
        assert layer.get_capacity("chat.42") == 2
        assert layer.get_capacity("chat.x") == 100

    def test_first_match_in_order_wins(self) -> None:
        layer = BaseChannelLayer(channel_capacity=[("chat.vip.*", 50), ("chat.*", 10)])
        assert layer.get_capacity("chat.vip.1") == 50
        assert layer.get_capacity("chat.room") == 10
        reversed_order = BaseChannelLayer(
            channel_capacity=[("chat.*", 10), ("chat.vip.*", 50)]
        )
        assert reversed_order.get_capacity("chat.vip.1") == 10

    def test_compile_capacities_returns_ordered_pairs(
        self, layer: BaseChannelLayer
    ) -> None:
        compiled = layer.compile_capacities({"a.*": 1, re.compile("b"): 2})
        assert [capacity for _, capacity in compiled] == [1, 2]
        assert compiled[0][0].match("a.x")

    def test_a_key_that_is_no_pattern_is_refused(self, layer: BaseChannelLayer) -> None:
        with pytest.raises(
            TypeError, match=r"channel_capacity key 42 is neither a glob"
        ):
            layer.compile_capacities({42: 1})  # type: ignore[dict-item]

    @pytest.mark.parametrize("capacity", [0, -1, 2.5, "3", None])
    def test_a_capacity_that_is_no_positive_int_is_refused(
        self, layer: BaseChannelLayer, capacity: object
    ) -> None:
        with pytest.raises(TypeError, match=r"channel_capacity\['a\.\*'\] must be a"):
            layer.compile_capacities({"a.*": capacity})  # type: ignore[dict-item]


class TestNames:
    @pytest.mark.parametrize(
        "name",
        ["a", "chat.room-1_x", "specific.inmemory!abc123", "reply!", "x" * 99],
    )
    def test_valid_channel_names(self, layer: BaseChannelLayer, name: str) -> None:
        assert layer.require_valid_channel_name(name) is True

    @pytest.mark.parametrize(
        ("name", "why"),
        [
            (b"bytes", "not a str but bytes"),
            (None, "not a str but NoneType"),
            ("x" * 100, "100 characters long"),
            ("", "a character outside that set"),
            ("has space", "a character outside that set"),
            ("caf\u00e9", "a character outside that set"),
            ("a!b!c", "a character outside that set"),
        ],
    )
    def test_invalid_channel_names_raise_type_error_naming_them(
        self, layer: BaseChannelLayer, name: object, why: str
    ) -> None:
        with pytest.raises(TypeError) as excinfo:
            layer.require_valid_channel_name(name)
        text = str(excinfo.value)
        assert text.startswith("Channel name must be a valid unicode string")
        assert why in text
        assert repr(name)[:40] in text

    def test_a_huge_name_is_shortened_in_the_message(
        self, layer: BaseChannelLayer
    ) -> None:
        with pytest.raises(TypeError) as excinfo:
            layer.require_valid_channel_name("y" * 10_000)
        assert len(str(excinfo.value)) < 400
        assert "10000 characters long" in str(excinfo.value)

    def test_receive_names_with_a_local_part_must_end_at_the_bang(
        self, layer: BaseChannelLayer
    ) -> None:
        assert layer.require_valid_channel_name("reply.abc!", receive=True)
        with pytest.raises(TypeError, match=r"receive on 'reply\.abc!'"):
            layer.require_valid_channel_name("reply.abc!def", receive=True)

    def test_group_names_allow_no_local_part(self, layer: BaseChannelLayer) -> None:
        assert layer.require_valid_group_name("chat.room-1_x")
        with pytest.raises(TypeError, match=r"^Group name must be .* Got 'a!b'"):
            layer.require_valid_group_name("a!b")
        with pytest.raises(TypeError, match="not a str but int"):
            layer.require_valid_group_name(5)
        with pytest.raises(TypeError, match="100 characters long"):
            layer.require_valid_group_name("g" * 100)

    def test_valid_channel_names_checks_each_name(
        self, layer: BaseChannelLayer
    ) -> None:
        assert layer.valid_channel_names(["a", "b!"], receive=True)
        with pytest.raises(TypeError, match="Got 'b c'"):
            layer.valid_channel_names(["a", "b c"])
        with pytest.raises(
            TypeError, match=r"non-empty list of channel names \(got \[\]"
        ):
            layer.valid_channel_names([])
        with pytest.raises(TypeError, match=r"\(got 'abc'\)"):
            layer.valid_channel_names("abc")  # type: ignore[arg-type]

    def test_deprecated_spellings_warn_and_still_check(
        self, layer: BaseChannelLayer
    ) -> None:
        with pytest.warns(DeprecationWarning, match="require_valid_channel_name"):
            assert layer.valid_channel_name("ok")
        with pytest.warns(DeprecationWarning, match="require_valid_group_name"):
            assert layer.valid_group_name("ok")
        with (
            pytest.warns(DeprecationWarning, match="deprecated"),
            pytest.raises(TypeError, match="Got 'no good'"),
        ):
            layer.valid_group_name("no good")

    @pytest.mark.parametrize(
        ("name", "expected"),
        [("plain", "plain"), ("reply.abc!def", "reply.abc!"), ("reply!", "reply!")],
    )
    def test_non_local_name(
        self, layer: BaseChannelLayer, name: str, expected: str
    ) -> None:
        assert layer.non_local_name(name) == expected


class TestErrors:
    def test_channel_full_names_the_channel_and_capacity(self) -> None:
        error = ChannelFull("chat.1", 100)
        assert (error.channel, error.capacity) == ("chat.1", 100)
        assert "channel 'chat.1' is full: it holds 100 messages" in str(error)
        assert str(ChannelFull("chat.1")) == "channel 'chat.1' is full"
        assert str(ChannelFull()) == ""

    def test_channel_full_is_reachable_from_the_layer(
        self, layer: BaseChannelLayer
    ) -> None:
        assert layer.ChannelFull is ChannelFull
        assert BaseChannelLayer.ChannelFull is ChannelFull


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "args", "part"),
    [
        ("send", ("c", {}), "the core API"),
        ("receive", ("c",), "the core API"),
        ("new_channel", (), "the core API"),
        ("flush", (), "the 'flush' extension"),
        ("group_add", ("g", "c"), "the 'groups' extension"),
        ("group_discard", ("g", "c"), "the 'groups' extension"),
        ("group_send", ("g", {}), "the 'groups' extension"),
    ],
)
async def test_api_methods_name_themselves_when_not_implemented(
    method: str, args: tuple[Any, ...], part: str
) -> None:
    class Partial(BaseChannelLayer):
        pass

    with pytest.raises(NotImplementedError) as excinfo:
        await getattr(Partial(), method)(*args)
    assert str(excinfo.value) == (
        f"Partial does not implement {method}() ({part}); channel layers override it"
    )


@pytest.mark.asyncio
async def test_close_is_a_no_op_on_the_base(layer: BaseChannelLayer) -> None:
    assert await layer.close() is None
