"""``LRU``: the bound on per-session caches."""

from __future__ import annotations

import threading

from simulacra_session._lru import LRU


def test_keeps_the_most_recently_used() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"] = 1
    cache["b"] = 2
    assert cache.get("a") == 1  # a is now newer than b
    cache["c"] = 3
    assert "b" not in cache
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)
    cache["a"] = 10  # storing counts as use too
    cache["d"] = 4
    assert "c" not in cache
    assert (cache.get("a"), cache.get("d")) == (10, 4)
    assert cache.pop("a") == 10
    assert cache.pop("a") is None
    assert cache.get("missing") is None
    assert len(cache) == 1


def test_threads_sharing_it_keep_it_bounded_and_consistent() -> None:
    cache: LRU[int, int] = LRU(50)
    errors: list[BaseException] = []

    def churn(offset: int) -> None:
        try:
            for index in range(20_000):
                key = (offset + index) % 200
                cache[key] = key
                found = cache.get((key * 7) % 200)
                assert found is None or found == (key * 7) % 200
                if index % 3 == 0:
                    cache.pop((key + 1) % 200)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=churn, args=(offset,)) for offset in (0, 37, 101, 151)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50
