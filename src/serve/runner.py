"""The application served from a background thread on a free port (tests, benchmarks, embedding)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

from src.core.config import AppConfig
from src.core.runtime.threads import name_os_thread


class BackgroundServer:
    """`create_app` on HOST:0 (a free port) served by its own event loop thread; `close()` ends every session."""

    def __init__(self, config: AppConfig, engine: Any = None, *, admin_token: str | None = None, host: str = "127.0.0.1",
                 admission: Any = None) -> None:
        from aiohttp import web

        from src.serve.app import create_app
        from src.serve.engine import LocalEngine

        self.engine = engine or LocalEngine(config)
        self.app = create_app(config, self.engine, host=host, admin_token=admin_token, admission=admission)
        self.host = host
        self.loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        self._thread = threading.Thread(target=self._run_loop, name="serve-loop", daemon=True)
        self._thread.start()
        self.port = self._call(self._start())
        self.base = f"http://{host}:{self.port}"

    def _run_loop(self) -> None:
        name_os_thread()
        self.loop.run_forever()

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> int:
        from aiohttp import web

        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        return int(cast(asyncio.Server, site._server).sockets[0].getsockname()[1])  # started: loop.create_server's Server

    def close(self) -> None:
        self._call(self._runner.cleanup(), 60.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
