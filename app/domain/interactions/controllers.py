"""Interaction endpoints: each changes its state table, records its seed event and answers htmx with the
updated fragment (a button with its count, the comment thread), so counts change in place.

Guests may like and hide ("Not interested"): a guest user row is created on their first action (and merged into
the account when they sign in). Saving, following, commenting, liking a comment and reporting need an account:
htmx guests get the sign-in sheet in place (``sign_in_sheet``), and the browser repeats the request once they
have signed in; plain posts are redirected to ``/login?next=...``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import NotFoundException

from app.db.engine import Database
from app.db.models import Video
from app.domain.accounts.services import AccountService
from app.domain.interactions.services import InteractionError, InteractionService, VideoRef, clean_context
from app.domain.interactions.web import (
    NOT_VISIBLE,
    go_back,
    request_params,
    sign_in_sheet,
    signed_in_user,
    visible_target,
)
from app.domain.videos.controllers import can_view
from app.server.guards import login_redirect
from app.server.templating import is_htmx, render
from app.server.web_session import WebSession


class ButtonState(SimpleNamespace):
    """What a like or save button shows (its template reads ``card.video.id``, the state and the count)."""


def _error(request: Request, exc: InteractionError) -> Response:
    if is_htmx(request):
        # The toast shows the message; nothing on the page is swapped.
        trigger = json.dumps({"foryou:toast": {"message": str(exc)}})
        return Response("", status_code=exc.status_code, headers={"HX-Trigger": trigger, "HX-Reswap": "none"})
    return Response(str(exc), status_code=exc.status_code, media_type="text/plain")


class InteractionController(Controller):
    # ---- like ------------------------------------------------------------------------------------------
    @post("/videos/{video_id:str}/like", status_code=200)
    async def like(self, request: Request, video_id: str, db: Database, accounts: AccountService,
                   interactions: InteractionService, web_session: WebSession) -> Response:
        return await self._like(request, video_id, True, db, accounts, interactions, web_session)

    @delete("/videos/{video_id:str}/like", status_code=200)
    async def unlike(self, request: Request, video_id: str, db: Database, accounts: AccountService,
                     interactions: InteractionService, web_session: WebSession) -> Response:
        return await self._like(request, video_id, False, db, accounts, interactions, web_session)

    async def _like(self, request: Request, video_id: str, on: bool, db: Database, accounts: AccountService,
                    interactions: InteractionService, web_session: WebSession) -> Response:
        context = clean_context(await request_params(request))
        if web_session.user is None:
            # A pending visitor's first action creates its guest: only for a video it may see.
            video = await visible_target(db, web_session, video_id)
            user = await accounts.ensure_visitor(web_session)
            toggled = await interactions.set_like(user, video, on, context)
        else:
            # The video is looked up and checked inside the write (one hop to the database, not two).
            user = web_session.user
            found = await interactions.like_visible(user, video_id, on, context,
                                                    lambda ref: can_view(ref, user.id, user.role))
            if found is None:
                raise NotFoundException(NOT_VISIBLE)
            video, toggled = found
        if not is_htmx(request):
            return go_back(request, f"/v/{video.id}")
        # The button needs only the state and the count the write saw: no card hydration.
        return render(request, "components/like_button.html",
                      {"card": ButtonState(video=video, liked=on, like_count=toggled.count)})

    # ---- save ------------------------------------------------------------------------------------------
    @post("/videos/{video_id:str}/save", status_code=200)
    async def save(self, request: Request, video_id: str, db: Database, interactions: InteractionService,
                   web_session: WebSession) -> Response:
        return await self._save(request, video_id, True, db, interactions, web_session)

    @delete("/videos/{video_id:str}/save", status_code=200)
    async def unsave(self, request: Request, video_id: str, db: Database, interactions: InteractionService,
                     web_session: WebSession) -> Response:
        return await self._save(request, video_id, False, db, interactions, web_session)

    async def _save(self, request: Request, video_id: str, on: bool, db: Database,
                    interactions: InteractionService, web_session: WebSession) -> Response:
        video = await visible_target(db, web_session, video_id)
        user = signed_in_user(web_session)
        if user is None:
            return sign_in_sheet(request, f"/v/{video.id}", "save")
        context = clean_context(await request_params(request))
        toggled = await interactions.set_save(user, video, on, context)
        if not is_htmx(request):
            return go_back(request, f"/v/{video.id}")
        return render(request, "components/save_button.html",
                      {"card": ButtonState(video=video, saved=on, save_count=toggled.count)})

    # ---- follow ----------------------------------------------------------------------------------------
    @post("/creators/{creator_id:str}/follow", status_code=200)
    async def follow(self, request: Request, creator_id: str, interactions: InteractionService,
                     web_session: WebSession) -> Response:
        return await self._follow(request, creator_id, True, interactions, web_session)

    @delete("/creators/{creator_id:str}/follow", status_code=200)
    async def unfollow(self, request: Request, creator_id: str, interactions: InteractionService,
                       web_session: WebSession) -> Response:
        return await self._follow(request, creator_id, False, interactions, web_session)

    async def _follow(self, request: Request, creator_id: str, on: bool, interactions: InteractionService,
                      web_session: WebSession) -> Response:
        user = signed_in_user(web_session)
        if user is None:
            creator = await interactions.creator(creator_id)
            if creator is None:
                raise NotFoundException("No such creator.")
            return sign_in_sheet(request, f"/@{creator.username}", "follow")
        params = await request_params(request)
        context = clean_context(params)
        video_id = params.get("video_id") or None
        try:
            # The creator is looked up inside the write (one hop to the database, not two).
            found = await interactions.follow_found(user, creator_id, on, context, video_id=video_id)
        except InteractionError as exc:
            return _error(request, exc)
        if found is None:
            raise NotFoundException("No such creator.")
        creator, toggled = found
        if not is_htmx(request):
            return go_back(request, f"/@{creator.username}")
        trigger = json.dumps({"foryou:follow": {"creator_id": creator.id, "following": on,
                                                "followers": toggled.count}})
        return render(request, "components/follow_button.html",
                      {"creator": creator, "following": on, "variant": params.get("variant", "rail"),
                       "video_id": video_id},
                      headers={"HX-Trigger-After-Settle": trigger})

    # ---- comments --------------------------------------------------------------------------------------
    @get("/videos/{video_id:str}/comments")
    async def comments(self, request: Request, video_id: str, db: Database, interactions: InteractionService,
                       web_session: WebSession) -> Response:
        video = await visible_target(db, web_session, video_id)
        return await self._thread(request, interactions, web_session, video, clean_context(dict(request.query_params)))

    @post("/videos/{video_id:str}/comments", status_code=200)
    async def add_comment(self, request: Request, video_id: str, db: Database, interactions: InteractionService,
                          web_session: WebSession) -> Response:
        video = await visible_target(db, web_session, video_id)
        user = signed_in_user(web_session)
        if user is None:
            return sign_in_sheet(request, f"/v/{video.id}?comments=1", "comment")
        params = await request_params(request)
        context = clean_context(params)
        try:
            parent = params.get("parent_id") or ""
            await interactions.add_comment(user, video, params.get("text", ""), context,
                                           parent_id=int(parent) if parent.isdigit() else None)
        except InteractionError as exc:
            if not is_htmx(request):
                return _error(request, exc)
            return await self._thread(request, interactions, web_session, video, context, error=str(exc),
                                      draft=params.get("text", ""), status_code=exc.status_code)
        if not is_htmx(request):
            return go_back(request, f"/v/{video.id}")
        return await self._thread(request, interactions, web_session, video, context)

    @delete("/comments/{comment_id:int}", status_code=200)
    async def delete_comment(self, request: Request, comment_id: int, interactions: InteractionService,
                             web_session: WebSession) -> Response:
        user = signed_in_user(web_session)
        if user is None:
            return login_redirect(request, "/")
        try:
            comment = await interactions.delete_comment(user, comment_id)
        except InteractionError as exc:
            return _error(request, exc)
        video = await interactions.video(comment.video_id)
        if video is None or not is_htmx(request):
            return go_back(request, f"/v/{comment.video_id}")
        return await self._thread(request, interactions, web_session, video, clean_context(dict(request.query_params)))

    @post("/comments/{comment_id:int}/like", status_code=200)
    async def like_comment(self, request: Request, comment_id: int, interactions: InteractionService,
                           web_session: WebSession) -> Response:
        return await self._comment_like(request, comment_id, True, interactions, web_session)

    @delete("/comments/{comment_id:int}/like", status_code=200)
    async def unlike_comment(self, request: Request, comment_id: int, interactions: InteractionService,
                             web_session: WebSession) -> Response:
        return await self._comment_like(request, comment_id, False, interactions, web_session)

    async def _comment_like(self, request: Request, comment_id: int, on: bool, interactions: InteractionService,
                            web_session: WebSession) -> Response:
        user = signed_in_user(web_session)
        if user is None:
            video_id = await interactions.comment_video(comment_id)
            return sign_in_sheet(request, f"/v/{video_id}?comments=1" if video_id else "/", "comment_like")
        try:
            comment, count, liked = await interactions.set_comment_like(user, comment_id, on)
        except InteractionError as exc:
            return _error(request, exc)
        if not is_htmx(request):
            return go_back(request, f"/v/{comment.video_id}")
        return render(request, "components/comment_like.html", {"c": {"id": comment.id, "like_count": count,
                                                                       "liked": liked}})

    async def _thread(self, request: Request, interactions: InteractionService, web_session: WebSession,
                      video: VideoRef | Video,
                      context: dict[str, Any], *, error: str | None = None, draft: str = "",
                      status_code: int = 200) -> Response:
        comments = await interactions.comments(video.id, web_session.user)
        # htmx answers with the thread, plus the card's comment count swapped out of band.
        return render(request, "components/comments.html",
                      {"video": video, "comments": comments,
                       "comment_count": len(comments) + sum(len(c.replies) for c in comments),
                       "context": context, "error": error, "draft": draft, "oob": is_htmx(request)},
                      status_code=status_code)

    # ---- not interested and report ---------------------------------------------------------------------
    @post("/videos/{video_id:str}/hide", status_code=200)
    async def hide(self, request: Request, video_id: str, db: Database, accounts: AccountService,
                   interactions: InteractionService, web_session: WebSession) -> Response:
        video = await visible_target(db, web_session, video_id)
        params = await request_params(request)
        creator_too = params.get("scope") == "creator"
        user = await accounts.ensure_visitor(web_session)
        await interactions.hide(user, video, creator_too, clean_context(params))
        message = ("You won't see videos from this creator." if creator_too
                   else "Got it: you'll see fewer videos like this.")
        return self._gone(request, video, "creator" if creator_too else "video", message)

    @post("/videos/{video_id:str}/report", status_code=200)
    async def report(self, request: Request, video_id: str, db: Database, interactions: InteractionService,
                     web_session: WebSession) -> Response:
        video = await visible_target(db, web_session, video_id)
        user = signed_in_user(web_session)
        if user is None:
            return sign_in_sheet(request, f"/v/{video.id}", "report")
        params = await request_params(request)
        try:
            await interactions.report(
                user, video, params.get("reason", ""), params.get("details", ""), clean_context(params))
        except InteractionError as exc:
            return _error(request, exc)
        return self._gone(request, video, "video", "Thanks for reporting. We'll review this video.")

    @staticmethod
    def _gone(request: Request, video: VideoRef | Video, scope: str, message: str) -> Response:
        """The video (or all of its creator's) leaves the page: the browser removes the cards and says why."""
        if not is_htmx(request):
            return go_back(request, "/")
        trigger = {"foryou:hidden": {"video_id": video.id, "creator_id": video.creator_id, "scope": scope,
                                     "message": message}}
        return Response("", status_code=200, headers={"HX-Trigger": json.dumps(trigger), "HX-Reswap": "none"})

