"""The web application: server-rendered pages (Starlette and Jinja2, GOV.UK Frontend's look),
the board kept live by server-sent events, and the actions, each checked for the user's role
and a CSRF token, sent to the hub and recorded with the user's name.

Without JavaScript every page still works (the board has a refresh link); with it, the board
re-reads its rows whenever the feed stores a packet or an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from argon2 import PasswordHasher
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console.auth import Accounts, LoginRefused, Role, csrf_token, csrf_valid
from console.board import Gauge, build_board, format_left
from console.feed import Changes, Feed
from console.packet_view import view_packet
from console.settings import ConsoleSettings
from console.store import ConsoleStore
from hub.client import HubClient, HubDidNotAnswer
from hub.decisions import DECISION_LABELS
from hub.policy import BragPolicy
from schemas.enums import Brag, Decision

__all__ = ["create_app"]

log = structlog.get_logger("mash.console")

_HERE = Path(__file__).resolve().parent
_UK = ZoneInfo("Europe/London")
_REF_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def _now() -> datetime:
    return datetime.now(UTC)


def _when(value: datetime) -> str:
    return value.astimezone(_UK).strftime("%a %d %b %Y, %H:%M")


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["when"] = _when
    env.globals["DECISION_LABELS"] = DECISION_LABELS
    env.globals["Gauge"] = Gauge
    env.globals["format_left"] = format_left
    return env


def create_app(
    settings: ConsoleSettings,
    *,
    store: ConsoleStore | None = None,
    policy: BragPolicy | None = None,
    clock: Callable[[], datetime] = _now,
    connect_broker: bool = True,
    hasher: PasswordHasher | None = None,
) -> Starlette:
    store = store or ConsoleStore(settings.console_db)
    policy = policy or BragPolicy.from_env()
    accounts = Accounts(store, hasher)
    changes = Changes()
    templates = _templates()
    secret = store.secret("session-key")
    state: dict[str, Any] = {}

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        user = request.session.get("user")
        role = Role(request.session["role"]) if user else None
        html = templates.get_template(name).render(
            request=request,
            user=user,
            role=role,
            csrf=csrf_token(secret, request.session.get("sid", "")),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def signed_in(request: Request) -> tuple[str, Role] | None:
        # The account as it is now, not as it was at sign-in: a role changed (or an account
        # replaced) by `mash console user add` takes effect on the next request.
        name = request.session.get("user")
        account = store.user(name) if name else None
        if account is None or account.role != request.session.get("role"):
            return None
        return account.name, Role(account.role)

    def to_login(request: Request) -> Response:
        return RedirectResponse("/login", status_code=303)

    async def login_page(request: Request) -> Response:
        if "sid" not in request.session:
            request.session["sid"] = secrets.token_urlsafe(32)
        return render(request, "login.html")

    async def login(request: Request) -> Response:
        form = await request.form()
        if not csrf_valid(secret, request.session.get("sid", ""), str(form.get("csrf", ""))):
            return PlainTextResponse("The form has expired: go back and try again.", 403)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        try:
            user = await asyncio.to_thread(accounts.login, name, password, clock())
        except LoginRefused as refused:
            log.info("console_login_refused")
            return render(request, "login.html", 401, error=str(refused), username=name)
        # A new session id on sign-in: a session fixed before it is worth nothing after.
        request.session.clear()
        request.session.update(
            {"user": user.name, "role": user.role, "sid": secrets.token_urlsafe(32)}
        )
        store.record(user.name, "signed-in", None, clock())
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if csrf_valid(secret, request.session.get("sid", ""), str(form.get("csrf", ""))):
            request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def board_context() -> dict[str, Any]:
        return {"board": build_board(store.open_contacts(), policy, clock())}

    async def board(request: Request) -> Response:
        if signed_in(request) is None:
            return to_login(request)
        return render(request, "board.html", **board_context())

    async def board_rows(request: Request) -> Response:
        if signed_in(request) is None:
            return PlainTextResponse("signed out", 401)
        return render(request, "_board_rows.html", **board_context())

    async def board_stream(request: Request) -> Response:
        if signed_in(request) is None:
            return PlainTextResponse("signed out", 401)

        async def events() -> AsyncIterator[bytes]:
            seen = changes.version
            yield b"retry: 1000\n\n"
            while not await request.is_disconnected():
                now = await changes.wait_past(seen, timeout=15.0)
                # A change, or a keep-alive that also moves the time left on.
                yield f"data: {now}\n\n".encode()
                seen = now

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def find(request: Request) -> Response:
        if signed_in(request) is None:
            return to_login(request)
        ref = request.query_params.get("ref", "").strip().upper()
        if not ref or not set(ref) <= _REF_CHARS:
            return render(
                request,
                "board.html",
                400,
                error="Enter a contact reference, like MASH-2026-000042",
                **board_context(),
            )
        return RedirectResponse(f"/contacts/{ref}", status_code=303)

    async def packet(request: Request) -> Response:
        who = signed_in(request)
        if who is None:
            return to_login(request)
        user, role = who
        ref = request.path_params["ref"]
        if not role.reads_packets:
            return render(request, "error.html", 403, message="Your role does not read packets.")
        version = request.query_params.get("version")
        return contact_page(
            request,
            user,
            ref,
            version=int(version) if version and version.isdigit() else None,
            message=request.query_params.get("done"),
        )

    def contact_page(
        request: Request,
        user: str,
        ref: str,
        status: int = 200,
        version: int | None = None,
        **extra: Any,
    ) -> Response:
        """The packet when there is one; while the checks are under way, the contact as the
        board knows it, with the actions."""
        found = store.packet(ref, version)
        contact = store.contact(ref)
        common = {"contact": contact, "Brag": Brag, "Decision": Decision, **extra}
        if found is None:
            if contact is None:
                return render(request, "error.html", 404, message=f"No contact {ref} here.")
            return render(request, "contact.html", status, **common)
        # Need to know: who saw which child's information, when.
        store.record(user, "packet-viewed", ref, clock(), version=str(found.version))
        log.info("packet_viewed", ref=ref, version=found.version, user=user)
        return render(
            request,
            "packet.html",
            status,
            view=view_packet(found),
            versions=store.packet_versions(ref),
            **common,
        )

    async def act(request: Request, action: str) -> Response:
        who = signed_in(request)
        if who is None:
            return to_login(request)
        user, role = who
        ref = request.path_params["ref"]
        form = await request.form()
        if not csrf_valid(secret, request.session.get("sid", ""), str(form.get("csrf", ""))):
            return PlainTextResponse("The form has expired: reload the page and try again.", 403)
        allowed = role.rerates if action == "rerate" else role.decides
        if not allowed:
            return render(request, "error.html", 403, message="Your role may not do that.")
        rationale = str(form.get("rationale", "")).strip()
        error = None
        if not rationale:
            error = "Enter the rationale"
        try:
            if action == "rerate":
                choice: str = Brag(str(form.get("brag", ""))).value
            else:
                choice = Decision(str(form.get("decision", ""))).value
        except ValueError:
            error = error or ("Select a rating" if action == "rerate" else "Select a decision")
        if error:
            return contact_page(request, user, ref, 400, error=error, error_for=action)
        client: HubClient | None = state.get("client")
        if client is None:
            return render(
                request, "error.html", 503, message="The console is not connected to the hub."
            )
        try:
            if action == "rerate":
                reply = await client.rerate(
                    ref, Brag(choice), 30.0, rationale=rationale, issued_by=user
                )
            else:
                reply = await client.decide(ref, Decision(choice), rationale, issued_by=user)
        except HubDidNotAnswer:
            store.record(user, f"{action}-queued", ref, clock(), choice=choice, rationale=rationale)
            return RedirectResponse(f"/contacts/{ref}?done=queued", status_code=303)
        store.record(
            user,
            "re-rated" if action == "rerate" else "decided",
            ref,
            clock(),
            choice=choice,
            rationale=rationale,
            ok=str(reply.ok).lower(),
            error=reply.error or "",
        )
        if not reply.ok:
            return render(request, "error.html", 409, message=f"The hub refused it: {reply.error}")
        # The hub's reply is its word on the new state: shown at once, before its event
        # reaches the feed (which then changes nothing).
        with store.transaction() as db:
            if action == "rerate" and reply.brag is not None and reply.deadline is not None:
                store.rerated(db, ref, reply.brag, reply.deadline)
            elif action == "decide":
                store.decided(db, ref, choice)
        await changes.bump()
        return RedirectResponse(f"/contacts/{ref}?done={action}", status_code=303)

    async def rerate(request: Request) -> Response:
        return await act(request, "rerate")

    async def decide(request: Request) -> Response:
        return await act(request, "decide")

    async def healthz(request: Request) -> Response:
        feed: Feed | None = state.get("feed")
        ok = not connect_broker or (feed is not None and bool(feed.consumers))
        return PlainTextResponse("ok" if ok else "not ready", 200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if connect_broker:
            feed = Feed(settings, store, changes, clock)
            await feed.start()
            client = HubClient(settings, name="mash-console-commands")
            await client.__aenter__()
            state.update(feed=feed, client=client)
        try:
            yield
        finally:
            if connect_broker:
                await state["client"].__aexit__(None, None, None)
                await state["feed"].stop()

    static = StaticFiles(directory=_HERE / "static")
    routes = [
        Route("/", board),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/board/rows", board_rows),
        Route("/board/stream", board_stream),
        Route("/find", find),
        Route("/contacts/{ref}", packet),
        Route("/contacts/{ref}/rerate", rerate, methods=["POST"]),
        Route("/contacts/{ref}/decide", decide, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/static", static),
        # GOV.UK Frontend's stylesheet asks for its fonts and images at /assets.
        Mount("/assets", StaticFiles(directory=_HERE / "static" / "govuk" / "assets")),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="mash_console",
            same_site="strict",
            https_only=settings.console_secure_cookies,
            max_age=8 * 3600,  # a working day
        )
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.store = store
    app.state.changes = changes
    return app
