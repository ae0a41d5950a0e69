"""``rtvc serve``: run the server (HTTP + WebSocket rtvc.v1 + WebRTC) on uvicorn with uvloop."""

from __future__ import annotations

import argparse
import socket
import sys

from rtvc.cli.common import add_common, config_from_args, data_dir_from

__all__ = ["build_server", "page_url", "register", "serve"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the streaming server")
    add_common(parser)
    parser.add_argument("--host", help="address to listen on (default: [server] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: [server] port, 8080; 0 picks a free one)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(func=serve)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections made while the engine starts wait in the backlog instead of being refused
    sock.set_inheritable(True)
    return sock


def page_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "::" else host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def build_server(config: dict, *, host: str, port: int, data_dir, log_level: str = "info", **app_options):
    """(uvicorn.Server, bound socket, app) exactly as ``rtvc serve`` runs them; benchmarks reuse this."""
    import uvicorn

    from rtvc.server import create_app

    app = create_app(config, data_dir=data_dir, **app_options)
    sock = _bind(host, port)
    uv_config = uvicorn.Config(
        app,
        loop="uvloop",
        # uvicorn's driver over the websockets library's sans-I/O core: it stops reading a socket until the app
        # took the previous message and waits for the write buffer to drain, so a connection's memory is bounded.
        ws="websockets-sansio",
        ws_max_size=4 * app.state.rtvc.limits.max_message_bytes,  # hard cap; the app answers message_too_big below
        ws_per_message_deflate=False,  # PCM does not compress; deflate would only cost CPU
        lifespan="on",
        log_level=log_level,
        access_log=log_level == "debug",
    )
    return uvicorn.Server(uv_config), sock, app


def serve(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    host = args.host or config["server"]["host"]
    port = config["server"]["port"] if args.port is None else args.port
    data_dir = data_dir_from(config)
    server, sock, app = build_server(config, host=host, port=port, data_dir=data_dir, log_level=args.log_level)
    keys = app.state.rtvc.keys
    url = page_url(host, sock.getsockname()[1])
    print(f"rtvc: serving on {url}  (data dir {data_dir})", flush=True)
    if keys.count() == 0:
        key, _ = keys.create("client", name="local")
        print(f"rtvc: created a local client key (shown once, stored hashed): {key}", flush=True)
        print(f"rtvc: open {url} and paste the key, or send 'Authorization: Bearer {key}'", flush=True)
    else:
        print(f"rtvc: {keys.count()} active key(s) in {keys.path}; `rtvc keys create` makes another", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0 if server.started else 1


if __name__ == "__main__":  # `python -m rtvc.cli.serve ...` works before the sub-command is registered
    root = argparse.ArgumentParser(prog="rtvc")
    register(root.add_subparsers(dest="command", required=True))
    parsed = root.parse_args(["serve", *sys.argv[1:]])
    sys.exit(parsed.func(parsed))
