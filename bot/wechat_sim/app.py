"""The simulator's HTTP side: WeChat's API for the bot, a JSON control API, and the chat page.

/cgi-bin/token, /cgi-bin/stable_token,            what the bot calls, as api.weixin.qq.com
/cgi-bin/message/custom/send, .../template/send
/sim/api/...                                      users, their actions, the log, the clock
/                                                 the page where a person chats as a user
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.wechat_sim.config import SimConfig
from bot.wechat_sim.simulator import NotFollowing, Simulator
from bot.wechat_sim.state import SimClock

PAGE = Path(__file__).parent / "static" / "index.html"
SIMULATOR = web.AppKey("simulator", Simulator)
MAX_TEXT_CHARS = 2000
OPENID_RULE = "openid: 1-64 printable characters"


def build_app(config: SimConfig, clock: SimClock | None = None) -> web.Application:
    """The whole simulator as an aiohttp app (tests serve it with aiohttp's test server)."""
    app = web.Application(client_max_size=64 * 1024)
    app[SIMULATOR] = Simulator(config, clock)
    app.cleanup_ctx.append(_closing)
    app.router.add_get("/", page)
    app.router.add_get("/cgi-bin/token", token)
    app.router.add_post("/cgi-bin/stable_token", stable_token)
    app.router.add_post("/cgi-bin/message/custom/send", custom_send)
    app.router.add_post("/cgi-bin/message/template/send", template_send)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_get("/sim/api/health", health)
    app.router.add_post("/sim/api/verify", verify)
    app.router.add_get("/sim/api/users", list_users)
    app.router.add_post("/sim/api/users", add_user)
    app.router.add_delete("/sim/api/users/{openid}", forget_user)
    app.router.add_post("/sim/api/users/{openid}/send", user_send)
    app.router.add_post("/sim/api/users/{openid}/event", user_event)
    app.router.add_post("/sim/api/users/{openid}/image", user_image)
    app.router.add_get("/sim/api/log", log)
    app.router.add_get("/sim/api/clock", get_clock)
    app.router.add_post("/sim/api/clock", advance_clock)
    return app


def run(config: SimConfig) -> None:
    """Serve until SIGINT/SIGTERM (`carebot wechat-sim`)."""
    print(f"WeChat simulator on http://{config.host}:{config.port}/", flush=True)
    web.run_app(build_app(config), host=config.host, port=config.port, print=None)


async def _closing(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SIMULATOR].close()


def _json(data: Any, status: int = 200) -> web.Response:
    """JSON with Chinese readable as such (curl, logs), not as \\u escapes."""
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _sim(request: web.Request) -> Simulator:
    return request.app[SIMULATOR]


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return None


def _bad_request(message: str) -> web.Response:
    return _json({"error": message}, status=400)


# --- WeChat's API --------------------------------------------------------------------------


async def token(request: web.Request) -> web.Response:
    query = request.query
    answer = _sim(request).state.fetch_token(
        query.get("appid", ""), query.get("secret", ""), query.get("grant_type", "")
    )
    return _json(answer)


async def stable_token(request: web.Request) -> web.Response:
    body = await _json_body(request)
    state = _sim(request).state
    if not isinstance(body, dict):
        return _json({"errcode": 47001, "errmsg": "data format error"})
    return _json(state.stable_token(body))


async def custom_send(request: web.Request) -> web.Response:
    body = await _json_body(request)
    answer = _sim(request).state.custom_send(request.query.get("access_token", ""), body)
    return _json(answer)


async def template_send(request: web.Request) -> web.Response:
    body = await _json_body(request)
    answer = _sim(request).state.template_send(request.query.get("access_token", ""), body)
    return _json(answer)


# --- the control API -----------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    config = _sim(request).config
    mode = "safe" if config.safe_mode else "plain"
    return _json({"status": "ok", "mode": mode, "webhook": config.webhook_url})


async def verify(request: web.Request) -> web.Response:
    return _json(await _sim(request).verify_url())


async def list_users(request: web.Request) -> web.Response:
    sim = _sim(request)
    now = sim.clock.now()
    return _json([user.as_json(now) for user in sim.state.listed_users()])


async def add_user(request: web.Request) -> web.Response:
    body = await _json_body(request)
    openid = str(body.get("openid") or "").strip() if isinstance(body, dict) else ""
    if not _valid_openid(openid):
        return _bad_request(OPENID_RULE)
    sim = _sim(request)
    user = sim.state.add_user(openid, str(body.get("name") or ""))
    return _json(user.as_json(sim.clock.now()), status=201)


Action = Callable[[Simulator, str], Awaitable[dict[str, Any]]]


def _valid_openid(openid: str) -> bool:
    return 0 < len(openid) <= 64 and openid.isprintable() and openid == openid.strip()


async def _act(request: web.Request, action: Action) -> web.Response:
    openid = request.match_info["openid"]
    if not _valid_openid(openid):
        return _bad_request(OPENID_RULE)
    try:
        return _json(await action(_sim(request), openid))
    except NotFollowing:
        return _json({"error": "the user does not follow the account"}, status=409)
    except ValueError as failure:
        return _bad_request(str(failure))


async def forget_user(request: web.Request) -> web.Response:
    """The simulator's side of `carebot forget`: the user and their records are erased."""
    openid = request.match_info["openid"]
    if not _valid_openid(openid):
        return _bad_request(OPENID_RULE)
    return _json({"erased_records": _sim(request).state.forget(openid)})


async def user_send(request: web.Request) -> web.Response:
    body = await _json_body(request)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        return _bad_request(f"text: 1-{MAX_TEXT_CHARS} characters")
    return await _act(request, lambda sim, openid: sim.send_text(openid, text))


async def user_event(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        return _bad_request('a JSON object {"event": ..., "key": ...}')
    event, key = str(body.get("event") or ""), str(body.get("key") or "")
    if event == "CLICK" and not key:
        return _bad_request("a CLICK event needs a key")
    return await _act(request, lambda sim, openid: sim.send_event(openid, event, key))


async def user_image(request: web.Request) -> web.Response:
    return await _act(request, lambda sim, openid: sim.send_image(openid))


async def log(request: web.Request) -> web.Response:
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        return _bad_request("since must be a record id")
    records = _sim(request).state.log(request.query.get("openid") or None, since)
    return _json([record.as_json() for record in records])


async def get_clock(request: web.Request) -> web.Response:
    clock = _sim(request).clock
    return _json({"now": clock.now(), "offset_s": clock.offset_s})


async def advance_clock(request: web.Request) -> web.Response:
    body = await _json_body(request)
    seconds = body.get("advance_s") if isinstance(body, dict) else None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        return _bad_request("advance_s: a number of seconds ≥ 0")
    _sim(request).clock.advance(float(seconds))
    return await get_clock(request)


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})
