import json
import uuid

import pytest
from sqlalchemy import func, select

from app.db.models import Event, User
from tests.app.helpers import add_video, run, services
from tests.app.test_accounts import login, signup
from tests.conftest import csrf_of

pytestmark = pytest.mark.both_databases


def beacon(client, events, csrf=None):
    csrf = csrf if csrf is not None else csrf_of(client)
    return client.post("/api/events", content=json.dumps({"csrf": csrf, "events": events}),
                       headers={"content-type": "text/plain"})


def view(video_id, seconds=3.0, event_id=None):
    return {"event_id": event_id or uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": seconds}


def stored_events(client, **where):
    async def _query():
        async with services(client).db.read() as session:
            query = select(Event)
            for key, value in where.items():
                query = query.where(getattr(Event, key) == value)
            return (await session.execute(query)).scalars().all()

    return run(client, _query())


def test_guest_events_are_stored_and_carried_over_at_signup(client):
    video = add_video(client)
    assert beacon(client, [view(video, 4.0), view(video, 1.0)]).status_code == 202
    guest_events = stored_events(client)
    assert len(guest_events) == 2
    guest_id = guest_events[0].user_id
    assert signup(client, username="erin").status_code == 200

    async def _user():
        async with services(client).db.read() as session:
            return (await session.execute(select(User).where(User.username == "erin"))).scalar_one()

    erin = run(client, _user())
    assert erin.id == guest_id  # the guest became the account
    assert {e.user_id for e in stored_events(client)} == {erin.id}


def test_guest_events_move_to_an_existing_account_at_login(client):
    video = add_video(client)
    signup(client, username="frank")
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    beacon(client, [view(video, 2.0)])
    assert login(client, username="frank").status_code == 200

    async def _frank_id():
        async with services(client).db.read() as session:
            return (await session.execute(select(User.id).where(User.username == "frank"))).scalar_one()

    assert {e.user_id for e in stored_events(client)} == {run(client, _frank_id())}


def test_duplicate_event_id_is_stored_once_and_watch_time_merges_with_max(client):
    video = add_video(client)
    event_id = uuid.uuid4().hex
    first = beacon(client, [view(video, 2.0, event_id)])
    assert first.json() == {"accepted": 1, "duplicates": 0}
    again = beacon(client, [view(video, 5.5, event_id), view(video, 3.0, event_id)])
    assert again.json() == {"accepted": 0, "duplicates": 2}  # both copies were already stored
    late_and_shorter = beacon(client, [view(video, 1.0, event_id)])
    assert late_and_shorter.json()["duplicates"] == 1
    rows = stored_events(client, event_id=event_id)
    assert len(rows) == 1
    assert rows[0].watch_duration == 5.5


def test_events_are_sessionized(client):
    video = add_video(client)
    beacon(client, [view(video), view(video)])
    sessions = {e.session_id for e in stored_events(client)}
    assert len(sessions) == 1 and None not in sessions


def test_bad_beacons_get_clear_errors_and_store_nothing(client):
    video = add_video(client)
    csrf = csrf_of(client)
    malformed = client.post("/api/events", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "JSON" in malformed.json()["error"]

    unknown = beacon(client, [view(video), {"event_id": uuid.uuid4().hex, "type": "teleport", "video_id": video}], csrf)
    assert unknown.status_code == 422
    assert any("teleport" in p for p in unknown.json()["problems"])

    not_a_beacon = beacon(client, [{"event_id": uuid.uuid4().hex, "type": "like", "video_id": video}], csrf)
    assert not_a_beacon.status_code == 422

    missing_watch = beacon(client, [{"event_id": uuid.uuid4().hex, "type": "view", "video_id": video}], csrf)
    assert missing_watch.status_code == 422

    ghost_video = beacon(client, [view("v_doesnotexist")], csrf)
    assert ghost_video.status_code == 422

    no_csrf = beacon(client, [view(video)], csrf="")
    assert no_csrf.status_code == 403

    huge = client.post("/api/events", content=b"x" * (300 * 1024), headers={"content-type": "application/json"})
    assert huge.status_code == 413

    assert stored_events(client) == []  # the valid event beside the unknown one was not half-written


def test_concurrent_writes_do_not_fail_with_database_locked(client):
    """Many write transactions at once: BEGIN IMMEDIATE plus busy_timeout makes them queue, not fail."""
    import asyncio

    from app.domain.events.writer import EventIn, write_events

    video = add_video(client)
    db = services(client).db

    async def _burst():
        await asyncio.gather(*[
            write_events(db, [EventIn(event_id=uuid.uuid4().hex, event_type="view", user_id=None, video_id=video,
                                      watch_duration=1.0)])
            for _ in range(40)
        ])
        async with db.read() as session:
            return (await session.execute(select(func.count()).select_from(Event))).scalar_one()

    assert run(client, _burst()) == 40


def test_a_batch_costs_a_fixed_number_of_statements_whatever_its_size(client):
    """The writer's Core path: a few statements per batch, never one per event (the ORM bulk path with
    RETURNING issued one INSERT per row on SQLite); new rows get their ids and sessions, duplicates merge."""
    from sqlalchemy import event as sa_event

    from app.domain.events.writer import EventIn, write_events

    video = add_video(client)
    db = services(client).db
    users = []

    async def _users():
        async with db.write() as session:
            for n in range(3):
                user = User(is_guest=True, display_name=f"Guest {n}")
                session.add(user)
                users.append(user)

    run(client, _users())
    seen = [[uuid.uuid4().hex, 2.0] for _ in range(50)]
    first = [EventIn(event_id=eid, event_type="view", user_id=users[0].id, video_id=video, watch_duration=watch)
             for eid, watch in seen]
    run(client, write_events(db, first))
    statements = []

    def _count(_conn, _cursor, statement, *_args):  # noqa: ANN001
        statements.append(statement)

    batch = [EventIn(event_id=uuid.uuid4().hex, event_type="impression", user_id=users[i % 3].id, video_id=video)
             for i in range(300)]
    batch += [EventIn(event_id=eid, event_type="view", user_id=users[0].id, video_id=video, watch_duration=9.0)
              for eid, _ in seen]  # the same views, grown
    engine = db.thread_engine or db.engine.sync_engine  # where the batch runs (SQLite: the write thread's)
    sa_event.listen(engine, "before_cursor_execute", _count)
    try:
        stored = run(client, write_events(db, batch))
    finally:
        sa_event.remove(engine, "before_cursor_execute", _count)
    assert 3 <= len(statements) <= 15, statements
    assert sum(item.is_new for item in stored) == 300
    assert all(item.row_id and item.session_id for item in stored)
    assert len({item.row_id for item in stored}) == 350
    assert {e.watch_duration for e in stored_events(client, event_type="view")} == {9.0}
    assert len(stored_events(client)) == 350


def test_actions_in_one_batch_commit_with_their_events_and_a_refused_one_fails_alone(client):
    """Likes queued together share the writer's batch transaction; one that raises (a refused action) is answered
    with its error while the others and their events are stored."""
    import asyncio

    from sqlalchemy import insert as sa_insert

    from app.db.models import Like
    from app.domain.events.writer import EventIn

    video = add_video(client)
    svc = services(client)

    async def _users():
        async with svc.db.write() as session:
            made = [User(is_guest=True, display_name=f"Guest {n}") for n in range(3)]
            session.add_all(made)
        return [user.id for user in made]

    users = run(client, _users())

    def like(user_id):  # noqa: ANN001, ANN202
        def apply(session):  # noqa: ANN001, ANN202
            session.execute(sa_insert(Like.__table__).values(user_id=user_id, video_id=video))
            return user_id, [EventIn(event_id=uuid.uuid4().hex, event_type="like", user_id=user_id, video_id=video)]
        return apply

    def refused(session):  # noqa: ANN001, ANN202
        session.execute(sa_insert(Like.__table__).values(user_id=users[2], video_id=video))
        raise ValueError("refused")

    async def _together():
        return await asyncio.gather(svc.events.change(like(users[0])), svc.events.change(refused),
                                    svc.events.change(like(users[1])), return_exceptions=True)

    first, second, third = run(client, _together())
    assert (first, third) == (users[0], users[1])
    assert isinstance(second, ValueError)

    async def _likes():
        async with svc.db.read() as session:
            return sorted((await session.execute(select(Like.user_id))).scalars())

    assert run(client, _likes()) == sorted(users[:2])  # the refused change's row went with its rollback
    assert sorted(e.user_id for e in stored_events(client, event_type="like")) == sorted(users[:2])
