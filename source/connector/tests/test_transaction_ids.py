"""Transaction ids: increasing, unique after a restart, within int32."""

from __future__ import annotations

import pytest

from connector.core.transaction_ids import EPOCH_2020, INT32_MAX, TransactionIds


def test_ids_increase_and_fit_int32() -> None:
    ids = TransactionIds(clock=lambda: EPOCH_2020 + 1000)
    issued = [ids.next() for _ in range(5)]
    assert issued == [1001, 1002, 1003, 1004, 1005]
    assert all(0 < i <= INT32_MAX for i in issued)


def test_restart_continues_above_the_observed_id() -> None:
    first = TransactionIds(clock=lambda: EPOCH_2020 + 1000)
    last = [first.next() for _ in range(50)][-1]
    restarted = TransactionIds(clock=lambda: EPOCH_2020 + 1001)  # same clock second
    restarted.observe(last)
    assert restarted.next() == last + 1


def test_clock_floor_covers_a_lost_state() -> None:
    ids = TransactionIds(clock=lambda: EPOCH_2020 + 5000)
    ids.observe(10)  # an old value: ignored in favour of the clock
    assert ids.next() == 5001


@pytest.mark.parametrize("bad", [0, -5, INT32_MAX + 1])
def test_observe_ignores_impossible_values(bad: int) -> None:
    ids = TransactionIds(clock=lambda: EPOCH_2020 + 100)
    ids.observe(bad)
    assert ids.next() == 101


def test_exhaustion_is_an_error_not_a_wrap() -> None:
    ids = TransactionIds(clock=lambda: EPOCH_2020 + INT32_MAX)
    with pytest.raises(OverflowError):
        ids.next()


def test_instances_never_share_an_id_and_keep_going_after_restarts() -> None:
    clock = [1_700_000_000.0]
    issued: set[int] = set()
    last: dict[int, int] = {}  # what each instance kept on the broker
    for _run in range(3):  # each instance restarts twice
        for instance in (0, 1, 63):
            ids = TransactionIds(lambda: clock[0], instance)
            if instance in last:
                ids.observe(last[instance])
            new = [ids.next() for _ in range(50)]
            assert all(i % 64 == instance and 0 < i <= INT32_MAX for i in new)
            assert not issued & set(new)
            issued |= set(new)
            last[instance] = new[-1]
        clock[0] += 1


@pytest.mark.parametrize(
    ("kept", "taken"),
    [
        (500_000_000, True),
        (2**30 + 100, True),  # as far ahead of the clock as ids can run
        (2**30 + 101, False),
        (INT32_MAX - 2**24, False),
        (INT32_MAX, False),  # a forged retained id: every StartTransaction would fail
        (INT32_MAX - 10, False),
        (0, False),
        (-5, False),
        (True, False),
        ("500", False),
        (1.5e9, False),
    ],
)
def test_an_implausible_kept_id_is_ignored(kept: object, taken: bool) -> None:
    ids = TransactionIds(clock=lambda: EPOCH_2020 + 100)
    assert ids.plausible(kept) is taken
    ids.observe(kept)  # type: ignore[arg-type]
    issued = ids.next()
    assert issued == (kept + 1 if taken else 101)  # type: ignore[operator]
    assert issued <= INT32_MAX
