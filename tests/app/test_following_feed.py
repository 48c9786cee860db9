"""The Following tab: unseen videos of followed creators newest first, then the rest; never a dead end."""

from __future__ import annotations

import re
import time

from tests.app.test_accounts import signup
from tests.app.test_events import beacon, view
from tests.app.test_interactions import add_ready, hx

HTML = {"accept": "text/html"}
CARD_IDS = re.compile(r'<article class="card[^"]*" id="card-([^"]+)"')


def test_following_puts_unseen_first_and_offers_start_over_when_caught_up(client):
    oldest = add_ready(client, creator="maya", caption="first")
    time.sleep(0.01)
    middle = add_ready(client, creator="maya", caption="second")
    time.sleep(0.01)
    newest = add_ready(client, creator="maya", caption="third")
    add_ready(client, creator="stranger", caption="not followed")
    signup(client, username="fan")
    assert client.post("/creators/u_maya/follow", headers=hx(client)).status_code == 200
    assert beacon(client, [view(newest, 3.0)]).status_code == 202  # seen already

    page = client.get("/?tab=following", headers=HTML).text
    assert CARD_IDS.findall(page) == [middle, oldest, newest]  # unseen newest first, then the seen one
    assert "New from @maya, who you follow" in page and "From @maya, who you follow (you&#39;ve seen it)" in page

    again = client.get("/?tab=following", headers=HTML).text  # a reload in the same session: all served
    assert CARD_IDS.findall(again) == []
    assert 'data-end="caught-up"' in again and "Nothing from creators you follow yet" not in again
    assert 'hx-post="/feed/restart?tab=following"' in again and ">Start over</button>" in again

    assert client.post("/feed/restart?tab=following", headers=hx(client)).headers["hx-redirect"] == "/?tab=following"
    assert CARD_IDS.findall(client.get("/?tab=following", headers=HTML).text) == [middle, oldest, newest]


def test_following_nobody_says_so(client):
    add_ready(client, creator="maya")
    signup(client, username="loner")
    page = client.get("/?tab=following", headers=HTML).text
    assert "Nothing from creators you follow yet" in page and 'data-end="caught-up"' not in page
