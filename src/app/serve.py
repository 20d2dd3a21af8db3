"""`python main.py serve [--host H] [--port P] [--max-sessions N] [--engine local|ray [--ray-address A]]`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
from collections.abc import Callable
from typing import cast

from src.core.config import AppConfig
from src.core.errors import UserError

log = logging.getLogger("puppetcam")


def add_serve_parser(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("serve", help="serve many avatar sessions over HTTP (studio page, viewer pages, API)")
    common(p)
    p.add_argument("--host", help="address to bind (default: serve.host; beyond loopback an admin token is required)")
    p.add_argument("--port", type=int, help="port (default: serve.port; 0 = any free port)")
    p.add_argument("--max-sessions", type=int, help="sessions at most (default: serve.max_sessions)")
    p.add_argument("--engine", help="where sessions run: local or ray (default: serve.engine)")
    p.add_argument("--ray-address", help="with --engine ray: 'auto' or HOST:PORT of a Ray cluster to join "
                   "(default: serve.ray.address; none starts a local Ray on loopback)")


def _apply_args(args: argparse.Namespace, config: AppConfig) -> None:
    sc = config.serve
    if args.host is not None:
        sc.host = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise UserError(f"--port {args.port}: must be 0..65535")
        sc.port = args.port
    if args.max_sessions is not None:
        if args.max_sessions < 1:
            raise UserError(f"--max-sessions {args.max_sessions}: must be 1 or more")
        sc.max_sessions = args.max_sessions
    if args.engine is not None:
        sc.engine = args.engine
    if getattr(args, "ray_address", None) is not None:
        if sc.engine != "ray":
            raise UserError(f"--ray-address {args.ray_address}: only with --engine ray")
        sc.ray.address = args.ray_address


def cmd_serve(args: argparse.Namespace, config: AppConfig) -> int:
    from aiohttp import web

    from src.serve.app import create_app
    from src.serve.engine import ENGINES
    from src.serve.tokens import resolve_admin_token

    _apply_args(args, config)
    sc = config.serve
    engine_factory = ENGINES.get(sc.engine)  # an unknown engine is a user error naming the known ones
    admin_token, generated = resolve_admin_token(sc.host, sc.admin_token)
    engine = engine_factory(config)
    app = create_app(config, engine, host=sc.host, admin_token=admin_token, admission=getattr(engine, "admission", None))

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, sc.host, sc.port, shutdown_timeout=2.0)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"--port {sc.port}: already in use on {sc.host}; stop what uses it or pick another, "
                                f"e.g. --port {sc.port + 1}") from None
            raise UserError(f"--host {sc.host}: cannot listen there ({exc.strerror or exc}); use an address of this "
                            "machine, e.g. --host 127.0.0.1") from None
        sockets = cast(asyncio.Server, site._server).sockets if site._server is not None else []  # loop.create_server's Server
        port = sockets[0].getsockname()[1] if sockets else sc.port
        shown = "127.0.0.1" if sc.host in ("0.0.0.0", "::", "") else sc.host
        print(f"puppetcam serve ({engine.name} engine, up to {sc.max_sessions} sessions): http://{shown}:{port}/", flush=True)
        if generated:
            # printed once, never logged
            print(f"admin token (needed to create sessions): {admin_token}   studio: http://{shown}:{port}/?admin={admin_token}",
                  flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            log.info("stopping: ending every session")
            await runner.cleanup()

    asyncio.run(run())
    return 0
