"""Instants keep their meaning in the operational store whatever zone a caller used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.store.operational import UtcTimestamp, utc

_TABLE = sa.Table("instants", sa.MetaData(), sa.Column("at", UtcTimestamp(), nullable=False))
_ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kolkata", "UTC"]


def _engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    _TABLE.metadata.create_all(engine)
    return engine


def test_a_shanghai_nine_oclock_reads_back_as_one_utc() -> None:
    engine = _engine()
    nine = datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with engine.begin() as connection:
        connection.execute(_TABLE.insert().values(at=nine))
        stored = connection.execute(sa.select(_TABLE.c.at)).scalar_one()
        # Compared with a UTC instant an hour later, the row is earlier (not 8 h later).
        earlier = connection.execute(
            sa.select(sa.func.count()).where(_TABLE.c.at < datetime(2026, 1, 1, 2, tzinfo=UTC))
        ).scalar_one()
    assert utc(stored) == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    assert earlier == 1


@settings(deadline=None)  # a fresh database per example; time varies with the machine
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.none()
    ),
    st.sampled_from(_ZONES),
    st.integers(min_value=-86_400, max_value=86_400),
)
def test_order_and_instant_survive_any_zone(naive: datetime, zone: str, shift: int) -> None:
    engine = _engine()
    instant = naive.replace(tzinfo=UTC)
    local = instant.astimezone(ZoneInfo(zone))
    other = instant + timedelta(seconds=shift)
    with engine.begin() as connection:
        connection.execute(_TABLE.insert().values(at=local))
        stored = utc(connection.execute(sa.select(_TABLE.c.at)).scalar_one())
        before = connection.execute(
            sa.select(sa.func.count()).where(_TABLE.c.at < other.astimezone(ZoneInfo(zone)))
        ).scalar_one()
    assert stored == instant
    assert before == (1 if instant < other else 0)
