"""The event emitter conversations and managers share."""

from __future__ import annotations

from typing import Any

from simulacra_session._emitter import Emitter


def test_once_removes_its_own_registration_not_an_equal_on() -> None:
    emitter = Emitter()
    calls: list[Any] = []

    def listener(value: Any) -> None:
        calls.append(value)

    emitter.on("e", listener)
    emitter.once("e", listener)
    for value in range(4):
        emitter.emit("e", value)
    assert calls == [0, 0, 1, 2, 3]
    emitter.off("e", listener)
    emitter.emit("e", 9)
    assert calls == [0, 0, 1, 2, 3]


def test_a_raising_listener_is_logged_and_the_rest_still_run(caplog: Any) -> None:
    emitter = Emitter()
    calls: list[str] = []

    def bad() -> None:
        raise RuntimeError("boom")

    emitter.on("e", bad)
    emitter.once("e", lambda: calls.append("once"))
    emitter.on("e", lambda: calls.append("on"))
    emitter.emit("e")
    emitter.emit("e")
    assert calls == ["once", "on", "on"]
    assert "boom" in caplog.text
