"""A clock the tests can move: the simulators' idea of *today* (report dates, due dates, task due times)
is the wall clock plus an offset that ``advance(days=…)`` grows, so invoices age without waiting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo


class SimClock:
    """Wall time plus an offset; ``advance`` moves it forward, ``reset`` back to the wall clock."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self, tz: tzinfo = UTC) -> datetime:
        return datetime.now(tz) + self.offset

    def today(self, tz: tzinfo = UTC) -> date:
        return self.now(tz).date()

    def advance(self, *, days: float = 0, seconds: float = 0) -> None:
        self.offset += timedelta(days=days, seconds=seconds)

    def reset(self) -> None:
        self.offset = timedelta(0)
