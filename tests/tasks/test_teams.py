"""Team membership: positions in joining order, never reused; idempotent joins; audited."""

from __future__ import annotations

import pytest

from perennial.access.audit import query_audit
from perennial.tasks.errors import TaskInputError, UnknownTeamMemberError
from perennial.tasks.teams import add_member, check_team_name, list_teams, remove_member, teams_of
from tests.api.hostile import snapshot
from tests.tasks.conftest import NOW, Store


def test_members_join_in_order_and_a_second_join_changes_nothing(store: Store) -> None:
    ann, bob = store.user("ann"), store.user("bob")
    store.team("gold", ann, bob)
    before = snapshot(store.engine)
    with store.engine.begin() as connection:
        again = add_member(connection, "gold", ann, actor="t", now=NOW)
    assert again.position == 1
    assert snapshot(store.engine) == before
    with store.engine.connect() as connection:
        [team] = list_teams(connection)
        added = query_audit(connection, action="task_team.member_added")
    assert [(m.username, m.position) for m in team.members] == [("ann", 1), ("bob", 2)]
    assert len(added) == 2


def test_a_position_is_never_reused_after_someone_leaves(store: Store) -> None:
    ann, bob, cai = store.user("ann"), store.user("bob"), store.user("cai")
    store.team("gold", ann, bob)
    with store.engine.begin() as connection:
        remove_member(connection, "gold", bob, actor="t", now=NOW)
        member = add_member(connection, "gold", cai, actor="t", now=NOW)
        assert teams_of(connection, bob) == frozenset()
    assert member.position == 3


def test_removing_someone_who_is_not_a_member_is_an_error(store: Store) -> None:
    ann = store.user("ann")
    with pytest.raises(UnknownTeamMemberError), store.engine.begin() as connection:
        remove_member(connection, "gold", ann, actor="t", now=NOW)


def test_an_unknown_user_cannot_join(store: Store) -> None:
    with pytest.raises(UnknownTeamMemberError, match="no user"), store.engine.begin() as c:
        add_member(c, "gold", "missing", actor="t", now=NOW)


@pytest.mark.parametrize("name", ["Gold", "gold team", "-gold", "", "g" * 101, "金牌"])
def test_team_names_are_lower_case_words(name: str) -> None:
    with pytest.raises(TaskInputError) as raised:
        check_team_name(name)
    assert raised.value.field == "team"


def test_an_agent_can_be_in_several_teams(store: Store) -> None:
    ann = store.user("ann")
    store.team("gold", ann)
    store.team("silver", ann)
    with store.engine.connect() as connection:
        assert teams_of(connection, ann) == frozenset({"gold", "silver"})
