"""`JanusPage`: serves the browser page that joins a Janus call (janus.js from Debian).

The page (``static/``) and Debian's ``libjs-janus-gateway`` janus.js are all it serves; the
call itself runs between the browser and Janus. Give its ``url`` to ``JanusEdge(page_url=)``
and the join links point at it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

JANUS_JS = Path("/usr/share/javascript/janus-gateway/janus.js")


class JanusPage:
    """An HTTP server for the page on ``host:port`` (a free port when 0)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, janus_js: Path = JANUS_JS) -> None:
        if not janus_js.exists():
            raise FileNotFoundError(
                f"{janus_js} not found: install Debian's libjs-janus-gateway "
                "(apt-get install libjs-janus-gateway) or pass janus_js="
            )
        self.host = host
        self.port = port
        self._janus_js = janus_js
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        static = resources.files("vision_agents.plugins.janus").joinpath("static")
        files = {
            name: static.joinpath(name) for name in ("index.html", "app.js", "adapter-shim.js")
        }

        async def serve(request: web.Request) -> web.StreamResponse:
            name = request.match_info.get("name") or "index.html"
            if name == "janus.js":
                return web.FileResponse(self._janus_js)
            source = files.get(name)
            if source is None:
                raise web.HTTPNotFound()
            kind = "text/html" if name.endswith(".html") else "text/javascript"
            return web.Response(text=source.read_text(), content_type=kind)

        app = web.Application()
        app.router.add_get("/", serve)
        app.router.add_get("/{name}", serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server  # the bound port, when 0 was asked for
            assert server is not None
            self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
