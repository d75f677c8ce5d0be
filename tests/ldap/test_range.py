"""The range-retrieval loop against servers that truncate, skip or stop (no server needed)."""

from __future__ import annotations

from collections.abc import Callable

from accessaudit.connectors.ldap.collect import follow_range

Fetch = Callable[[int], tuple[str | None, list[bytes]]]


def ad_like(total: int, max_range: int = 1500) -> Fetch:
    """A server like AD: at most ``max_range`` values per answer, the last ending in ``-*``."""
    values = [f"v{i}".encode() for i in range(total)]

    def fetch(start: int) -> tuple[str | None, list[bytes]]:
        end = start + max_range - 1
        if end >= total - 1:
            return f"member;range={start}-*", values[start:]
        return f"member;range={start}-{end}", values[start : end + 1]

    return fetch


def run(fetch: Fetch) -> tuple[list[bytes], bool, str, int]:
    key, first = fetch(0)
    assert key is not None
    return follow_range("member", key, first, fetch)


def test_follows_every_range_to_the_end() -> None:
    values, complete, detail, requests = run(ad_like(3501))
    assert complete and len(values) == 3501 and requests == 3
    assert values[-1] == b"v3500"
    assert detail == "range ended in -* after 3 request(s)"


def test_exactly_one_full_range() -> None:
    values, complete, _, requests = run(ad_like(1500))
    assert complete and len(values) == 1500 and requests == 1


def test_truncating_server_is_detected() -> None:
    """The classic bug: values stop at a multiple of 1500 with no final '-*' range."""
    full = ad_like(3501)

    def truncating(start: int) -> tuple[str | None, list[bytes]]:
        return (None, []) if start >= 3000 else full(start)

    values, complete, detail, _ = run(truncating)
    assert not complete and len(values) == 3000
    assert detail == "range stopped at 3000 without a final '-*' range"


def test_gap_is_detected() -> None:
    full = ad_like(4000)

    def skipping(start: int) -> tuple[str | None, list[bytes]]:
        key, vals = full(start + 10)
        return key, vals

    _, complete, detail, _ = run(lambda s: full(s) if s == 0 else skipping(s))
    assert not complete and detail.startswith("range gap: asked from 1500")


def test_count_mismatch_is_detected() -> None:
    def short(start: int) -> tuple[str | None, list[bytes]]:
        return "member;range=0-1499", [b"x"] * 1000

    _, complete, detail, _ = run(short)
    assert not complete and detail == "range member;range=0-1499 carried 1000 value(s)"


def test_repeating_server_is_detected() -> None:
    def same(start: int) -> tuple[str | None, list[bytes]]:
        return "member;range=0-1499", [b"x"] * 1500

    _, complete, detail, requests = run(same)
    assert not complete and requests == 2 and "range gap" in detail


def test_failed_request_is_incomplete() -> None:
    full = ad_like(2000)

    def failing(start: int) -> tuple[str | None, list[bytes]]:
        if start:
            raise RuntimeError("result 51 busy")
        return full(start)

    values, complete, detail, _ = run(failing)
    assert not complete and len(values) == 1500
    assert detail == "range request from 1500 failed: result 51 busy"


def test_unranged_answer_is_complete() -> None:
    values, complete, detail, _ = follow_range("member", "member", [b"a", b"b"], ad_like(0))
    assert (
        complete and values == [b"a", b"b"] and detail == "server returned the attribute unranged"
    )
