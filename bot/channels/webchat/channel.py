"""The web chat: a socket.io channel speaking rasa-webchat's protocol, with a mailbox.

Unlike Rasa's `socketio` channel it can send outside a turn (`get_output_channel`, so
`trigger_intent` reaches the customer), keeps every message in the CRM store so that a reload
shows the history and a customer who was away sees what came meanwhile (each message once: the
widget acknowledges by id and drops ids it has shown), and, given a Redis URL, shares its rooms
between Rasa processes (python-socketio's Redis manager), so an emit from any process reaches the
socket wherever it is connected. The protocol is in docs/webchat.md.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import engineio
import socketio
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.webchat import auth
from bot.channels.webchat.mailbox import Mailbox
from bot.channels.webchat.messages import (
    image_payload,
    shown_text,
    text_payload,
    user_text,
    wire_message,
    wire_payload,
)
from bot.settings import PROJECT_DIR
from crm_store.clock import Clock, utcnow

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SOCKET_IO_CLIENT = PROJECT_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
PRESENCE_LEASE = timedelta(seconds=90)
PRESENCE_RENEWAL_SECONDS = 30.0
USER_EVENT, BOT_EVENT = "user_uttered", "bot_uttered"
MIN_SECRET_LENGTH = 32  # RFC 7518: an HS256 key at least as long as the hash


@dataclass(frozen=True)
class WebChatConfig:
    """The channel's credentials.yml section."""

    database_url: str
    secret: str
    redis_url: str | None = None
    demo_login: bool = False
    demo_users: tuple[str, ...] = ()
    socketio_path: str = "/socket.io"
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> WebChatConfig:
        missing = [key for key in ("database_url", "secret") if not credentials.get(key)]
        if missing:
            raise ValueError(f"credentials for the webchat channel lack {', '.join(missing)}")
        if len(str(credentials["secret"])) < MIN_SECRET_LENGTH:
            raise ValueError(f"the webchat secret needs {MIN_SECRET_LENGTH} characters or more")
        return cls(
            database_url=str(credentials["database_url"]),
            secret=str(credentials["secret"]),
            redis_url=str(credentials["redis_url"]) if credentials.get("redis_url") else None,
            demo_login=_flag(credentials.get("demo_login")),
            demo_users=tuple(str(user) for user in credentials.get("demo_users") or ()),
            socketio_path=str(credentials.get("socketio_path") or "/socket.io"),
            allowed_origins=tuple(str(o) for o in credentials.get("allowed_origins") or ()),
        )


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


class SocketBlueprint(Blueprint):
    """A blueprint that attaches the socket.io server to the Sanic app it is registered on."""

    def __init__(self, sio: socketio.AsyncServer, path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx.sio, self.ctx.socketio_path = sio, path

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        self.ctx.sio.attach(app, self.ctx.socketio_path)
        super().register(app, options)


class OriginCheckedServer(socketio.AsyncServer):
    """socket.io that admits the page's own origin and the brand's listed sites, no other.

    python-engineio 4.7 takes either "same origin" (None) or a list that replaces it (and an
    empty list turns the check off), so the demo page at the server's own origin and the
    brand's sites could not both connect; this keeps engine.io's same-origin list and adds ours.
    engine.io only checks the origin here; the CORS headers are Rasa's.
    """

    def __init__(self, allowed_origins: tuple[str, ...], **kwargs: Any) -> None:
        self.listed_origins = allowed_origins
        super().__init__(cors_allowed_origins=None, **kwargs)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        listed = self.listed_origins

        class SameOriginOrListed(engineio.AsyncServer):
            async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
                return await super().handle_request(*args, **kwargs)

            # engine.io's handler returns nothing once a websocket has closed (the customer left
            # the page); Sanic 21 logs that as an ERROR ("Invalid response type None") unless the
            # handler is marked as a websocket handler. HTTP long-polling still returns responses.
            handle_request.is_websocket = True  # type: ignore[attr-defined]

            def _cors_allowed_origins(self, environ: dict[str, Any]) -> list[str]:
                return [*super()._cors_allowed_origins(environ), *listed]

            def _cors_headers(self, environ: dict[str, Any]) -> list[tuple[str, str]]:
                """None: Rasa's CORS, given the same allow-list (bot/runtime.py), writes them
                for every route; a second Access-Control-Allow-Origin makes browsers refuse."""
                return []

        return SameOriginOrListed


class WebChatOutput(OutputChannel):
    """Stores each bot message in the mailbox, then emits it to the session's room."""

    def __init__(self, channel: WebChatInput) -> None:
        self.channel = channel

    @classmethod
    def name(cls) -> str:
        return "webchat"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.channel.deliver(recipient_id, text_payload(text))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.channel.deliver(recipient_id, text_payload(text, buttons))

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.channel.deliver(recipient_id, text_payload(text, quick_replies))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.channel.deliver(recipient_id, image_payload(image))

    async def send_attachment(
        self, recipient_id: str, attachment: dict[str, Any], **kwargs: Any
    ) -> None:
        await self.channel.deliver(recipient_id, {"attachment": attachment})

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        await self.channel.deliver(recipient_id, {"custom": json_message})


class WebChatInput(InputChannel):
    """The `webchat` channel: socket.io at /socket.io, the widget at /webhooks/webchat/."""

    def __init__(self, config: WebChatConfig, clock: Clock = utcnow) -> None:
        self.config = config
        self.clock = clock
        self.mailbox = Mailbox(config.database_url, clock)
        manager = (
            socketio.AsyncRedisManager(config.redis_url, channel="carebot-webchat")
            if config.redis_url
            else None
        )
        self.sio = OriginCheckedServer(
            config.allowed_origins, async_mode="sanic", client_manager=manager
        )
        self._sessions: dict[str, str] = {}  # socket id -> session id, in this process
        self._renewal: asyncio.Task[None] | None = None
        self._on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None
        self._register_socket_handlers()

    @classmethod
    def name(cls) -> str:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WebChatInput:
        return cls(WebChatConfig.from_credentials(credentials or {}))

    def get_output_channel(self) -> OutputChannel | None:
        return WebChatOutput(self)

    # --- sending ---------------------------------------------------------------------------

    async def deliver(self, session_id: str, payload: dict[str, Any]) -> None:
        """Keep the message, then show it on every socket of the session, in any process.

        When the mailbox is down the message is still emitted (with a temporary id), so a
        connected customer is not left without an answer; it is then not in their history.
        """
        try:
            wire = wire_message(await self.mailbox.store(session_id, "bot", payload))
        except SQLAlchemyError:
            logger.exception("webchat mailbox unavailable; %s gets an unstored message", session_id)
            wire = wire_payload(payload, f"live-{uuid.uuid4().hex}", "bot", self.clock())
        await self.sio.emit(BOT_EVENT, wire, room=session_id)

    # --- HTTP ------------------------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        self._on_new_message = on_new_message
        blueprint = SocketBlueprint(self.sio, self.config.socketio_path, "webchat_webhook")

        @blueprint.route("/", methods=["GET"])
        async def page(request: Request) -> HTTPResponse:
            return await response.file(STATIC_DIR / "index.html")

        @blueprint.route("/static/vendor/socket.io.min.js", methods=["GET"])
        async def socket_io_client(request: Request) -> HTTPResponse:
            if not SOCKET_IO_CLIENT.is_file():
                return response.text("socket.io client not installed (npm ci)", status=404)
            return await response.file(SOCKET_IO_CLIENT)

        @blueprint.route("/static/<name:path>", methods=["GET"])
        async def static(request: Request, name: str) -> HTTPResponse:
            path = (STATIC_DIR / name).resolve()
            if not path.is_relative_to(STATIC_DIR) or not path.is_file():
                return response.text("not found", status=404)
            return await response.file(path)

        @blueprint.route("/demo-users", methods=["GET"])
        async def demo_users(request: Request) -> HTTPResponse:
            if not self.config.demo_login:
                return response.json({"error": "demo login is off"}, status=404)
            return response.json(await self._demo_users())

        @blueprint.route("/demo-login", methods=["POST"])
        async def demo_login(request: Request) -> HTTPResponse:
            return await self._demo_login(request)

        return blueprint

    async def _demo_users(self) -> list[dict[str, str]]:
        found = []
        for user in self.config.demo_users:
            name = await self.mailbox.web_user_name(user)
            if name is not None:
                found.append({"user": user, "name": name})
        return found

    async def _demo_login(self, request: Request) -> HTTPResponse:
        if not self.config.demo_login:
            return response.json({"error": "demo login is off"}, status=404)
        body = request.json if _is_json_object(request) else None
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or user not in self.config.demo_users:
            return response.json({"error": "'user' must be one of the demo users"}, status=400)
        name = await self.mailbox.web_user_name(user)
        if name is None:
            return response.json({"error": "no such demo customer"}, status=404)
        token = auth.issue_token(user, self.config.secret, self.clock())
        return response.json({"token": token, "user": user, "name": name})

    # --- socket.io -------------------------------------------------------------------------

    def _register_socket_handlers(self) -> None:
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("session_request", self.on_session_request)
        self.sio.on(USER_EVENT, self.on_user_uttered)
        self.sio.on("bot_ack", self.on_bot_ack)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        """Anonymous sockets are welcome; a socket that brings a bad token is refused."""
        token = auth_data.get("token") if isinstance(auth_data, dict) else None
        user = None
        if token:
            try:
                user = auth.user_of(str(token), self.config.secret, self.clock())
            except auth.InvalidToken as error:
                logger.info("webchat socket %s refused: %s", sid, error)
                raise socketio.exceptions.ConnectionRefusedError("invalid token") from error
        await self.sio.save_session(sid, {"user": user})
        self._start_presence_renewal()

    async def on_session_request(self, sid: str, data: Any = None) -> None:
        """Join the session's room, confirm the id, show the history."""
        socket_session = await self.sio.get_session(sid)
        requested = data.get("session_id") if isinstance(data, dict) else None
        session_id = auth.session_for(socket_session.get("user"), requested)
        joined = self.sio.enter_room(sid, session_id)
        if inspect.isawaitable(joined):  # a coroutine from python-socketio 5.10 on
            await joined
        self._sessions[sid] = session_id
        await self.sio.save_session(sid, {**socket_session, "session_id": session_id})
        await self.sio.emit("session_confirm", session_id, to=sid)
        await self._send_history(sid, session_id)
        await self._renew_presence([session_id])

    async def _send_history(self, sid: str, session_id: str) -> None:
        try:
            shown = await self.mailbox.history(session_id)
        except SQLAlchemyError:  # an empty history still tells the widget it may chat
            logger.exception("webchat mailbox unavailable; no history for %s", session_id)
            shown = []
        await self.sio.emit("history", {"messages": [wire_message(m) for m in shown]}, to=sid)

    async def on_user_uttered(self, sid: str, data: Any = None) -> None:
        session_id = self._sessions.get(sid)
        text = user_text(data)
        if session_id is None or text is None:
            logger.warning("webchat socket %s sent an unusable message; ignored", sid)
            await self.sio.emit("error_message", {"error": "unusable message"}, to=sid)
            return
        await self._keep_user_message(session_id, text)
        if self._on_new_message is None:
            raise RuntimeError("the blueprint was never built")
        metadata = {"channel": "web", "webchat": {"logged_in": not session_id.startswith("web-")}}
        await self._on_new_message(
            UserMessage(
                text,
                WebChatOutput(self),
                sender_id=session_id,
                input_channel=self.name(),
                metadata=metadata,
            )
        )

    async def _keep_user_message(self, session_id: str, text: str) -> None:
        try:
            shown = shown_text(text, await self.mailbox.last_bot_payload(session_id))
            await self.mailbox.store(session_id, "user", {"text": shown})
        except SQLAlchemyError:
            # the customer's words stay out of the log (docs/personal-data.md)
            logger.exception(
                "webchat mailbox unavailable; a message of %s is not in history", session_id
            )

    async def on_bot_ack(self, sid: str, data: Any = None) -> None:
        session_id = self._sessions.get(sid)
        message_id = data.get("message_id") if isinstance(data, dict) else None
        if session_id is None or not isinstance(message_id, int) or isinstance(message_id, bool):
            return
        try:
            await self.mailbox.acknowledge(session_id, message_id)
        except SQLAlchemyError:
            logger.exception("webchat mailbox unavailable; ack of %s lost", message_id)

    async def on_disconnect(self, sid: str) -> None:
        session_id = self._sessions.pop(sid, None)
        if session_id is None or session_id in self._sessions.values():
            return
        try:
            await self.mailbox.end_presence(session_id)
        except SQLAlchemyError:
            logger.exception("webchat mailbox unavailable; presence of %s not ended", session_id)

    # --- presence --------------------------------------------------------------------------

    def _start_presence_renewal(self) -> None:
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_RENEWAL_SECONDS)
            await self._renew_presence(set(self._sessions.values()))

    async def _renew_presence(self, session_ids: Any) -> None:
        if not session_ids:
            return
        try:
            await self.mailbox.renew_presence(session_ids, PRESENCE_LEASE)
        except SQLAlchemyError:
            logger.exception("webchat mailbox unavailable; presence not renewed")


def _is_json_object(request: Request) -> bool:
    try:
        return isinstance(request.json, dict)
    except Exception:  # Sanic raises its own InvalidUsage on a body that is not JSON
        return False
