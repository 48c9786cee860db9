"""Interaction endpoints: state tables, seed events, counts in the answered fragment, auth and CSRF."""

import json
import re
import uuid

from sqlalchemy import select

from app.db.models import Comment, CommentLike, Event, Follow, HiddenCreator, HiddenVideo, Like, Report, Save, User
from tests.app.helpers import add_video, run, services
from tests.app.test_accounts import signup
from tests.conftest import csrf_of

HX = {"hx-request": "true"}


def hx(client, csrf=None):
    return {**HX, "x-csrf-token": csrf or csrf_of(client)}


def rows(client, table, **where):
    async def _query():
        async with services(client).db.read() as session:
            query = select(table)
            for key, value in where.items():
                query = query.where(getattr(table, key) == value)
            return (await session.execute(query)).scalars().all()

    return run(client, _query())


def actions(client, **where):
    """Events other than the impressions that opening the feed (to read a CSRF token) logs."""
    return [e for e in rows(client, Event, **where) if e.event_type != "impression"]


def add_ready(client, creator="creator", **fields):
    video_id = add_video(client, creator=creator, **fields)
    run(client, services(client).recommender.refresh_video(video_id))
    return video_id


async def get_user(client, user_id):
    async with services(client).db.read() as session:
        return await session.get(User, user_id)


def user_named(client, username):
    return rows(client, User, username=username)[0]


def test_guest_like_and_unlike_store_state_events_and_counts(client):
    video = add_ready(client)
    csrf = csrf_of(client)
    context = {"position": "3", "source": "fresh", "feed": "foryou", "request_id": "abc123"}
    liked = client.post(f"/videos/{video}/like", data=context, headers=hx(client, csrf))
    assert liked.status_code == 200
    assert 'aria-pressed="true"' in liked.text and '<span class="count">1</span>' in liked.text
    assert f'hx-delete="/videos/{video}/like"' in liked.text  # the button now undoes
    again = client.post(f"/videos/{video}/like", headers=hx(client, csrf))  # idempotent: still one like
    assert '<span class="count">1</span>' in again.text
    [like] = rows(client, Like, video_id=video)
    guest = run(client, get_user(client, like.user_id))
    assert guest.is_guest
    [event] = rows(client, Event, event_type="like")
    assert event.video_id == video and event.creator_id == "u_creator" and event.user_id == guest.id
    assert event.additional_info == {"position": 3, "source": "fresh", "feed": "foryou", "request_id": "abc123"}

    undone = client.delete(f"/videos/{video}/like?position=3&source=fresh", headers=hx(client, csrf))
    assert undone.status_code == 200
    assert 'aria-pressed="false"' in undone.text and '<span class="count">0</span>' in undone.text
    assert rows(client, Like) == []
    assert [e.event_type for e in actions(client, video_id=video)] == ["like", "unlike"]


def test_actions_need_a_csrf_token(client):
    video = add_ready(client)
    assert client.post(f"/videos/{video}/like", headers=HX).status_code == 403
    assert client.post(f"/videos/{video}/like", headers={**HX, "x-csrf-token": "forged"}).status_code == 403
    assert client.post(f"/videos/{video}/hide", data={"csrf_token": "nope"}).status_code == 403
    assert rows(client, Like) == [] and rows(client, HiddenVideo) == []


def test_guests_get_the_sign_in_sheet_in_place_for_actions_that_need_an_account(client):
    video = add_ready(client)
    csrf = csrf_of(client)
    for method, path, action in (("post", f"/videos/{video}/save", "save"),
                                 ("post", f"/videos/{video}/comments", "comment"),
                                 ("post", "/creators/u_creator/follow", "follow"),
                                 ("post", f"/videos/{video}/report", "report")):
        response = getattr(client, method)(path, data={"text": "hi", "reason": "spam"}, headers=hx(client, csrf))
        assert response.status_code == 200, path
        assert "hx-redirect" not in response.headers, path  # no navigation: the sheet opens over the page
        assert response.headers["hx-retarget"] == "#auth-sheet" and response.headers["hx-reswap"] == "innerHTML"
        trigger = json.loads(response.headers["hx-trigger"])["foryou:auth-sheet"]
        assert trigger == {"method": "POST", "path": path, "action": action}
        assert 'id="login-form"' in response.text and '<input type="hidden" name="sheet" value="1">' in response.text
        assert 'hx-get="/signup?sheet=1' in response.text  # "Create an account" swaps forms inside the sheet
    sheet = client.post(f"/videos/{video}/save", headers=hx(client, csrf))
    assert f'name="next" value="/v/{video}"' in sheet.text
    # Plain form posts (no JavaScript) still go to the login page and come back.
    plain = client.post(f"/videos/{video}/save", data={"csrf_token": csrf}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/login?next=/v/{video}"
    plain = client.post("/creators/u_creator/follow", data={"csrf_token": csrf}, follow_redirects=False)
    assert plain.headers["location"] == "/login?next=/@creator"
    assert rows(client, Save) == [] and rows(client, Comment) == [] and rows(client, Follow) == []
    assert rows(client, Report) == [] and actions(client) == []


def test_signing_in_from_the_sheet_stays_on_the_page_and_the_repeated_action_is_stored(client):
    video = add_ready(client)
    signup(client, username="fern")
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    csrf = csrf_of(client)
    gated = client.post("/creators/u_creator/follow", data={"variant": "rail", "video_id": video},
                        headers=hx(client, csrf))
    assert "foryou:auth-sheet" in gated.headers["hx-trigger"]
    # A wrong password: the sheet's form comes back with its error (a 4xx the page swaps in place), still a sheet.
    wrong = client.post("/login", data={"username": "fern", "password": "nope nope", "next": "/@creator",
                                        "sheet": "1"}, headers=hx(client, csrf))
    assert wrong.status_code == 401 and 'role="alert"' in wrong.text and 'name="sheet" value="1"' in wrong.text
    signed_in = client.post("/login", data={"username": "fern", "password": "correct horse", "next": "/@creator",
                                            "sheet": "1"}, headers=hx(client, csrf))
    assert signed_in.status_code == 200 and "hx-redirect" not in signed_in.headers
    assert signed_in.headers["hx-reswap"] == "none"
    detail = json.loads(signed_in.headers["hx-trigger"])["foryou:signed-in"]
    assert detail["username"] == "fern" and detail["csrf"] and detail["csrf"] != csrf
    # The navigation is refreshed out of band: it now shows the account.
    assert 'id="side-rail"' in signed_in.text and 'hx-swap-oob="true"' in signed_in.text
    assert 'href="/@fern"' in signed_in.text and "Log out" in signed_in.text
    # The browser repeats the pending request with the new token: the follow is stored.
    again = client.post("/creators/u_creator/follow", data={"variant": "rail", "video_id": video},
                        headers=hx(client, detail["csrf"]))
    assert again.status_code == 200 and 'aria-pressed="true"' in again.text
    assert [(f.follower_id, f.creator_id) for f in rows(client, Follow)] == [(user_named(client, "fern").id,
                                                                               "u_creator")]
    # The sheet's sign-up form works the same way.
    client.post("/logout", data={"csrf_token": detail["csrf"]})
    csrf = csrf_of(client)
    form = client.get("/signup?sheet=1&next=/v/x", headers=HX)
    assert form.text.lstrip().startswith('<form id="signup-form"') and 'name="sheet" value="1"' in form.text
    taken = client.post("/signup", data={"username": "fern", "password": "a long password", "sheet": "1"},
                        headers=hx(client, csrf))
    assert taken.status_code == 409 and 'name="sheet" value="1"' in taken.text
    made = client.post("/signup", data={"username": "gus", "password": "a long password", "sheet": "1"},
                       headers=hx(client, csrf))
    assert json.loads(made.headers["hx-trigger"])["foryou:signed-in"]["username"] == "gus"


def test_save_follow_and_unfollow_when_signed_in(client):
    video = add_ready(client)
    signup(client, username="sam")
    sam = user_named(client, "sam")
    csrf = csrf_of(client)
    saved = client.post(f"/videos/{video}/save", headers=hx(client, csrf))
    assert 'aria-pressed="true"' in saved.text and '<span class="count">1</span>' in saved.text
    assert [s.user_id for s in rows(client, Save)] == [sam.id]
    unsaved = client.delete(f"/videos/{video}/save", headers=hx(client, csrf))
    assert '<span class="count">0</span>' in unsaved.text

    followed = client.post("/creators/u_creator/follow", data={"variant": "rail", "video_id": video},
                           headers=hx(client, csrf))
    assert followed.status_code == 200 and 'aria-pressed="true"' in followed.text
    trigger = json.loads(followed.headers["hx-trigger-after-settle"])["foryou:follow"]
    assert trigger == {"creator_id": "u_creator", "following": True, "followers": 1}
    assert [(f.follower_id, f.creator_id) for f in rows(client, Follow)] == [(sam.id, "u_creator")]
    profile_button = client.delete("/creators/u_creator/follow?variant=profile", headers=hx(client, csrf))
    assert 'aria-pressed="false"' in profile_button.text and "hx-post=" in profile_button.text
    assert re.search(r">\s*Follow\s*<", profile_button.text) and "Following" not in profile_button.text
    assert "hx-swap-oob" not in profile_button.text  # no out-of-band target that a list page would lack
    assert json.loads(profile_button.headers["hx-trigger-after-settle"])["foryou:follow"]["followers"] == 0
    assert rows(client, Follow) == []
    kinds = [(e.event_type, e.creator_id, e.video_id) for e in actions(client, user_id=sam.id)]
    assert kinds == [("save", "u_creator", video), ("unsave", "u_creator", video),
                     ("follow", "u_creator", video), ("unfollow", "u_creator", None)]
    own = client.post(f"/creators/{sam.id}/follow", headers=hx(client, csrf))
    assert own.status_code == 400 and "yourself" in own.headers["hx-trigger"]
    assert client.post("/creators/u_nobody/follow", headers=hx(client, csrf)).status_code == 404


def test_comments_post_list_and_delete_own(client):
    video = add_ready(client)
    signup(client, username="cara")
    csrf = csrf_of(client)
    posted = client.post(f"/videos/{video}/comments", data={"text": "  so   good  ", "position": "0"},
                         headers=hx(client, csrf))
    assert posted.status_code == 200
    assert "so good" in posted.text and "1 comment" in posted.text
    assert f'<span id="ccount-{video}" class="count" hx-swap-oob="true">1</span>' in posted.text
    [comment] = rows(client, Comment)
    [event] = rows(client, Event, event_type="comment")
    assert event.additional_info["text"] == "so good" and event.additional_info["comment_id"] == comment.id
    assert event.additional_info["position"] == 0

    empty = client.post(f"/videos/{video}/comments", data={"text": "   "}, headers=hx(client, csrf))
    assert empty.status_code == 400 and "Write something first" in empty.text
    too_long = client.post(f"/videos/{video}/comments", data={"text": "x" * 501}, headers=hx(client, csrf))
    assert too_long.status_code == 400

    listing = client.get(f"/videos/{video}/comments", headers=HX)
    assert "so good" in listing.text and f'hx-delete="/comments/{comment.id}"' in listing.text

    # Someone else cannot delete it, and does not get a delete button.
    client.post("/logout", data={"csrf_token": csrf})
    signup(client, username="dave")
    assert f'hx-delete="/comments/{comment.id}"' not in client.get(f"/videos/{video}/comments", headers=HX).text
    assert client.delete(f"/comments/{comment.id}", headers=hx(client)).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    client.post("/login", data={"username": "cara", "password": "correct horse"}, headers=hx(client))
    deleted = client.delete(f"/comments/{comment.id}", headers=hx(client))
    assert deleted.status_code == 200 and "No comments yet" in deleted.text
    assert 'hx-swap-oob="true">0</span>' in deleted.text
    assert rows(client, Comment) == []


def test_not_interested_hides_the_video_and_optionally_the_creator(client):
    first = add_ready(client, creator="ann", caption="one")
    second = add_ready(client, creator="bob", caption="two")
    third = add_ready(client, creator="bob", caption="three")
    csrf = csrf_of(client)
    hidden = client.post(f"/videos/{first}/hide", data={"scope": "video", "position": "0"}, headers=hx(client, csrf))
    assert hidden.status_code == 200
    trigger = json.loads(hidden.headers["hx-trigger"])["foryou:hidden"]
    assert trigger["video_id"] == first and trigger["scope"] == "video"
    client.post(f"/videos/{second}/hide", data={"scope": "creator"}, headers=hx(client, csrf))
    assert {h.video_id for h in rows(client, HiddenVideo)} == {first, second}
    assert [h.creator_id for h in rows(client, HiddenCreator)] == ["u_bob"]
    events = rows(client, Event, event_type="hide")
    assert sorted(e.additional_info["scope"] for e in events) == ["creator", "video"]
    # None of them comes back in the feed, even after "start over" forgets what this session was served.
    assert client.post("/feed/restart", headers=hx(client, csrf)).headers["hx-redirect"] == "/"
    page = client.get("/", headers={"accept": "text/html"})
    assert first not in page.text and second not in page.text and third not in page.text
    assert "You're all caught up" in page.text


def test_report_needs_a_reason_and_hides_the_video_at_once(client):
    video = add_ready(client, creator="ann")
    other = add_ready(client, creator="bob")
    signup(client, username="rita")
    csrf = csrf_of(client)
    assert client.post(f"/videos/{video}/report", data={"reason": "bogus"}, headers=hx(client, csrf)).status_code == 400
    reported = client.post(f"/videos/{video}/report", data={"reason": "spam", "details": "ads"},
                           headers=hx(client, csrf))
    assert reported.status_code == 200 and "foryou:hidden" in reported.headers["hx-trigger"]
    [report] = rows(client, Report)
    assert (report.video_id, report.reason, report.details, report.status) == (video, "spam", "ads", "open")
    [event] = rows(client, Event, event_type="report")
    assert event.additional_info["reason"] == "spam"
    client.post(f"/videos/{video}/report", data={"reason": "other"}, headers=hx(client, csrf))
    assert len(rows(client, Report)) == 1 and len(rows(client, Event, event_type="report")) == 1
    client.post("/feed/restart", headers=hx(client, csrf))
    page = client.get("/", headers={"accept": "text/html"})
    assert f'id="card-{video}"' not in page.text and f'id="card-{other}"' in page.text


def test_shares_come_through_the_beacon_and_show_in_the_count(client):
    video = add_ready(client)
    share = {"event_id": uuid.uuid4().hex, "type": "share", "video_id": video,
             "info": {"platform": "copy_link", "position": 0}}
    response = client.post("/api/events", content=json.dumps({"csrf": csrf_of(client), "events": [share]}),
                           headers={"content-type": "text/plain"})
    assert response.status_code == 202
    page = client.get(f"/v/{video}", headers={"accept": "text/html"})
    assert 'data-share-count="1"' in page.text


def test_unknown_or_unpublished_videos_are_404(client):
    hidden = add_video(client, state="processing")
    csrf = csrf_of(client)
    assert client.post("/videos/v_nope/like", headers=hx(client, csrf)).status_code == 404
    assert client.post(f"/videos/{hidden}/like", headers=hx(client, csrf)).status_code == 404
    assert client.get(f"/videos/{hidden}/comments", headers=HX).status_code == 404
    # Signed in, the video is looked up inside the write: the same 404s, and nothing written.
    signup(client, username="nia")
    csrf = csrf_of(client)
    assert client.post("/videos/v_nope/like", headers=hx(client, csrf)).status_code == 404
    assert client.post(f"/videos/{hidden}/like", headers=hx(client, csrf)).status_code == 404
    assert client.delete(f"/videos/{hidden}/like", headers=hx(client, csrf)).status_code == 404
    assert rows(client, Like) == []
    assert [e for e in actions(client) if e.event_type in ("like", "unlike")] == []


def test_comment_likes_toggle_and_count(client):
    video = add_ready(client)
    signup(client, username="lia")
    csrf = csrf_of(client)
    client.post(f"/videos/{video}/comments", data={"text": "first!"}, headers=hx(client, csrf))
    [comment] = rows(client, Comment)
    liked = client.post(f"/comments/{comment.id}/like", headers=hx(client, csrf))
    assert liked.status_code == 200 and 'aria-pressed="true"' in liked.text
    assert '<span class="count">1</span>' in liked.text and f'hx-delete="/comments/{comment.id}/like"' in liked.text
    again = client.post(f"/comments/{comment.id}/like", headers=hx(client, csrf))  # idempotent
    assert '<span class="count">1</span>' in again.text and len(rows(client, CommentLike)) == 1
    client.post("/logout", data={"csrf_token": csrf})
    signup(client, username="max")
    csrf = csrf_of(client)
    both = client.post(f"/comments/{comment.id}/like", headers=hx(client, csrf))
    assert '<span class="count">2</span>' in both.text
    thread = client.get(f"/videos/{video}/comments", headers=HX).text
    assert 'aria-label="Unlike comment (2 likes)"' in thread
    undone = client.delete(f"/comments/{comment.id}/like", headers=hx(client, csrf))
    assert 'aria-pressed="false"' in undone.text and '<span class="count">1</span>' in undone.text
    assert len(rows(client, CommentLike)) == 1
    assert client.post("/comments/999999/like", headers=hx(client, csrf)).status_code == 404
    # A guest gets the sign-in sheet, nothing is stored.
    client.post("/logout", data={"csrf_token": csrf})
    guest = client.post(f"/comments/{comment.id}/like", headers=hx(client))
    assert "foryou:auth-sheet" in guest.headers["hx-trigger"] and len(rows(client, CommentLike)) == 1


def test_replies_are_one_level_deep_and_deleting_a_comment_takes_its_replies(client):
    video = add_ready(client)
    other = add_ready(client, creator="other")
    signup(client, username="ria")
    csrf = csrf_of(client)
    client.post(f"/videos/{video}/comments", data={"text": "top"}, headers=hx(client, csrf))
    [top] = rows(client, Comment)
    client.post(f"/videos/{video}/comments", data={"text": "a reply", "parent_id": str(top.id)},
                headers=hx(client, csrf))
    reply = rows(client, Comment, text="a reply")[0]
    assert reply.parent_id == top.id
    # A reply to a reply attaches to the top-level comment.
    thread = client.post(f"/videos/{video}/comments", data={"text": "deeper", "parent_id": str(reply.id)},
                         headers=hx(client, csrf))
    assert rows(client, Comment, text="deeper")[0].parent_id == top.id
    assert thread.text.index("top") < thread.text.index("a reply") < thread.text.index("deeper")
    assert thread.text.count('class="replies"') == 1 and thread.text.count('class="comment reply"') == 2
    assert "3 comments" in thread.text
    [event] = [e for e in rows(client, Event, event_type="comment") if e.additional_info["text"] == "deeper"]
    assert event.additional_info["parent_id"] == top.id
    # A parent on another video is refused.
    wrong = client.post(f"/videos/{other}/comments", data={"text": "x", "parent_id": str(top.id)},
                        headers=hx(client, csrf))
    assert wrong.status_code == 404 and len(rows(client, Comment)) == 3
    client.post(f"/comments/{reply.id}/like", headers=hx(client, csrf))
    deleted = client.delete(f"/comments/{top.id}", headers=hx(client, csrf))
    assert deleted.status_code == 200 and "No comments yet" in deleted.text
    assert rows(client, Comment) == [] and rows(client, CommentLike) == []


def test_comment_tags_and_mentions_are_linked_after_escaping(client):
    video = add_ready(client)
    signup(client, username="lab.bench.lena")
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    signup(client, username="tom")
    csrf = csrf_of(client)
    text = "<script>alert(1)</script> it's #Maps, ask @lab.bench.lena. or @nobody_here, mail a@b.c &#39;x"
    thread = client.post(f"/videos/{video}/comments", data={"text": text}, headers=hx(client, csrf)).text
    assert "<script>" not in thread and "&lt;script&gt;alert(1)&lt;/script&gt;" in thread
    assert '<a class="hashtag" href="/tag/maps">#Maps</a>,' in thread
    assert '<a class="mention" href="/@lab.bench.lena">@lab.bench.lena</a>.' in thread
    assert "@nobody_here" in thread and 'href="/@nobody_here"' not in thread  # nobody: not a link
    assert 'href="/@b.c"' not in thread  # an e-mail address is not a mention
    assert 'href="/tag/39"' not in thread and "&amp;#39;x" in thread  # escaping never makes a tag


def test_linkify_escapes_everything_it_does_not_link():
    from app.domain.interactions.text import linkify

    assert str(linkify('#a"b <i>@x</i>', {"x"})) == \
        '<a class="hashtag" href="/tag/a">#a</a>&#34;b &lt;i&gt;<a class="mention" href="/@x">@x</a>&lt;/i&gt;'
    assert str(linkify("see#not and x@y", {"y"})) == "see#not and x@y"
    assert str(linkify("#café #日本", None)) == \
        '<a class="hashtag" href="/tag/caf%C3%A9">#café</a> <a class="hashtag" href="/tag/%E6%97%A5%E6%9C%AC">#日本</a>'
