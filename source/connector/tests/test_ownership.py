"""Pure, table-driven: ownership by the broker's order of claims (README "Several instances")."""

from __future__ import annotations

import pytest

from connector.core.ownership import Claim, Ownership, decode, encode


def replay(events: list[tuple[str, int, str]]) -> dict[int, Ownership]:
    """Events in the broker's order: ("accept", instance, conn) publishes a claim,
    which every instance then hears in that order; ("release", instance, conn) too."""
    views = {n: Ownership(n) for n in (0, 1, 2)}
    for kind, instance, connection in events:
        view = views[instance]
        claim = view.claim("CP", connection) if kind == "accept" else view.release("CP", connection)
        if claim is not None:
            for other in views.values():
                other.heard("CP", claim)
    return views


@pytest.mark.parametrize(
    ("events", "owner"),
    [
        ([("accept", 0, "a")], 0),
        ([("accept", 0, "a"), ("accept", 1, "b")], 1),  # the newer connection wins
        ([("accept", 0, "a"), ("accept", 1, "b"), ("accept", 2, "c")], 2),
        ([("accept", 0, "a"), ("release", 0, "a")], None),
        ([("accept", 0, "a"), ("accept", 0, "a2")], 0),  # a reconnect to the same one
    ],
)
def test_the_latest_claim_owns(events: list[tuple[str, int, str]], owner: int | None) -> None:
    views = replay(events)
    owners = [n for n, view in views.items() if view.owns("CP")]
    assert owners == ([] if owner is None else [owner])
    assert {view.holder("CP") for view in views.values()} == {owner}


def test_two_instances_accepting_within_milliseconds_agree() -> None:
    """Both publish before hearing anything; the broker orders a's claim first."""
    zero, one = Ownership(0), Ownership(1)
    a, b = zero.claim("CP", "a"), one.claim("CP", "b")
    for view in (zero, one):  # the broker's order: a, then b
        actions = [view.heard("CP", a), view.heard("CP", b)]
        if view is zero:
            assert actions == ["", "lost"]
        else:
            # b's own claim was not back when a's arrived: a came first, b wins.
            assert actions == ["", ""]
    assert (zero.owns("CP"), one.owns("CP")) == (False, True)


def test_a_late_release_of_the_old_connection_is_answered_by_reasserting() -> None:
    zero, one = Ownership(0), Ownership(1)
    old = zero.claim("CP", "old")
    for view in (zero, one):
        view.heard("CP", old)
    new = one.claim("CP", "new")
    for view in (zero, one):
        view.heard("CP", new)
    # The half-open old socket ends only now; zero had already lost it.
    assert zero.release("CP", "old") is None
    # A release that got out anyway (published before zero heard the new claim):
    assert one.heard("CP", Claim(None, "old")) == "reassert"


def test_commands_wait_for_our_own_claim() -> None:
    view = Ownership(0)
    claim = view.claim("CP", "a")
    assert not view.owns("CP")  # not back from the broker yet
    view.heard("CP", claim)
    assert view.owns("CP")


@pytest.mark.parametrize(
    "payload",
    [b"", b"{}", b"[]", b'{"connection": 5}', b'{"connection": "a", "instance": "1"}', b"\xff"],
)
def test_bad_claims_are_ignored(payload: bytes) -> None:
    assert decode(payload) is None


def test_claims_round_trip() -> None:
    for claim in (Claim(3, "x"), Claim(None, "y")):
        assert decode(encode(claim)) == claim
