"""A staff member's browser without the browser: HTTP with a cookie jar and the CSRF token."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp

PASSWORD = "carebot-demo"  # the demo staff's password (crm_store/demo/reference.py)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """An HTTP client with a cookie jar: one staff member's browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, allow_redirects=False) as response:
            return response.status, await response.text()

    async def post(
        self, path: str, data: dict[str, Any] | None = None, csrf: bool = True
    ) -> tuple[int, str, str]:
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.csrf
        async with self.http.post(self.base + path, data=form, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers.get("Location", "")

    async def login(self, username: str, password: str = PASSWORD) -> int:
        _, page = await self.get("/login")
        self.csrf = CSRF.search(page).group(1)  # type: ignore[union-attr]
        status, _, _ = await self.post("/login", {"username": username, "password": password})
        _, page = await self.get("/queue" if username != "manager" else "/dashboard")
        match = CSRF.search(page)
        self.csrf = match.group(1) if match else self.csrf
        return status

    async def close(self) -> None:
        await self.http.close()

    async def api(self, path: str) -> Any:
        status, body = await self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)
