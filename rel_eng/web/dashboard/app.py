"""The dashboard's Starlette app. Every route is GET (HEAD): nothing here changes state.

Pages are rendered server-side with the same autoescaping Jinja2 environment as the drop pages;
dashboard.js only polls the JSON API and writes text into the page (never markup).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Callable
from urllib.parse import quote

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rel_eng.store import queries
from rel_eng.web.dashboard import logs, views
from rel_eng.web.dashboard.waiting import WaitingCache
from rel_eng.web.dashboard.hosts import HostCheck, HostCheckMiddleware
from rel_eng.web.templating import render

log = logging.getLogger(__name__)

LIST_LIMIT = 50  # composes per list page; ?limit= asks for up to MAX_LIMIT
MAX_LIMIT = 500
POLL_MS = 2000
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def compose_href(compose_id: str) -> str:
    return "/composes/" + quote(compose_id, safe="")


def log_href(compose_id: str, rel: str) -> str:
    return compose_href(compose_id) + "/logs/" + quote(rel, safe="/")


class Dashboard:
    def __init__(self, engine: Engine, config=None, *, clock: Callable[[], dt.datetime] = _utcnow,
                 poll_ms: int = POLL_MS, waiting: WaitingCache | None = None):
        self.engine = engine
        self.waiting = waiting or WaitingCache()
        self.config = config
        self.clock = clock
        self.poll_ms = poll_ms

    # --- helpers ---

    def page(self, template: str, status_code: int = 200, **context) -> HTMLResponse:
        html = render(template, compose_href=compose_href, log_href=log_href,
                      poll_ms=self.poll_ms, **context)
        return HTMLResponse(html, status_code=status_code, headers=HEADERS)

    @staticmethod
    def api(data, status_code: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code=status_code, headers=HEADERS)

    @staticmethod
    def filters(request: Request) -> dict:
        q = request.query_params
        kind = q.get("type") or None
        return {"release": q.get("release") or None, "status": q.get("status") or None,
                "kind": kind if kind in views.KINDS else None}

    def composes(self, request: Request) -> tuple[dict, list[dict]]:
        f = self.filters(request)
        limit = request.query_params.get("limit", "")
        limit = min(int(limit), MAX_LIMIT) if limit.isdigit() and int(limit) > 0 else LIST_LIMIT
        rows = queries.list_composes(self.engine, limit, release=f["release"],
                                     kind=f["kind"], status=f["status"])
        return f, [views.list_row(r) for r in rows]

    def detail(self, request: Request) -> dict:
        return views.compose_view(self.stored(request))

    def stored(self, request: Request) -> dict:
        cid = request.path_params["compose_id"]
        d = queries.compose_detail(self.engine, cid)
        if d is None:
            raise HTTPException(404, f"no compose '{cid}' in the store")
        return d

    # --- pages ---

    def list_page(self, request: Request) -> Response:
        f, rows = self.composes(request)
        facets = queries.compose_facets(self.engine)
        return self.page("list.html", title="Composes", filters=f, rows=rows, facets=facets,
                         kinds=views.KINDS)

    def compose_page(self, request: Request) -> Response:
        d = self.stored(request)
        c = views.compose_view(d)
        # Only this page of a compose that has not ended asks the workers (waiting.py).
        waiting = None if d["status"] in views.FINAL else self.waiting(
            d["topdir"], {i["job_key"]: i.get("steps") or {} for i in d["images"]})
        return self.page("compose.html", title=c["compose_id"], c=c, waiting=waiting)

    def log_file(self, request: Request) -> Response:
        cid = request.path_params["compose_id"]
        topdir = queries.compose_topdir(self.engine, cid)
        path = None if topdir is None else logs.safe_log_path(topdir, request.path_params["path"])
        if path is None:
            raise HTTPException(404, f"no such log of compose '{cid}'")
        return FileResponse(path, media_type="text/plain; charset=utf-8",
                            headers={**HEADERS, "Content-Disposition": "inline"})

    def schedule_page(self, request: Request) -> Response:
        return self.page("schedule.html", title="Schedule", s=self.schedule())

    # --- API ---

    def api_composes(self, request: Request) -> Response:
        f, rows = self.composes(request)
        return self.api({"filters": f, "composes": rows})

    def api_compose(self, request: Request) -> Response:
        return self.api(self.detail(request))

    def api_schedule(self, request: Request) -> Response:
        return self.api(self.schedule())

    def schedule(self) -> dict:
        from rel_eng.schedule import firings
        from rel_eng.store.firings import FiringLedger

        from rel_eng.store.queries import released

        now = self.clock()
        # which candidate is released for each milestone, when and by whom
        releases = [{k: r[k] for k in ("release_key", "milestone", "label", "compose_id", "state",
                                       "released_by", "released_at", "mirror_path", "note")}
                    for r in released(self.engine)]
        if self.config is None:
            return {"now": now.isoformat(), "upcoming": [], "milestones": [], "streams": [],
                    "releases": releases}
        claims = {(r["kind"], r["subject"], r["slot"]): r for r in FiringLedger(self.engine).all()}
        upcoming = [{"due": f.due.isoformat(), "what": f.what, "kind": f.kind}
                    for f in firings.upcoming(self.config, now, 3)]
        stones = []
        for f in firings.milestones(self.config):
            claim = claims.get(f.key)
            state = (f"fired {claim['claimed_at']}" + (f": {claim['compose_id']}" if claim["compose_id"] else "")
                     if claim else "upcoming" if f.due > now else "due or missed")
            stones.append({"due": f.due.isoformat(), "what": f.what, "state": state,
                           "compose_id": (claim or {}).get("compose_id") or ""})
        streams = [{"name": s.name, "cron": s.cron, "release": s.release}
                   for s in self.config.schedule.streams]
        return {"now": now.isoformat(), "upcoming": upcoming, "milestones": stones, "streams": streams,
                "releases": releases}

    # --- errors ---

    def error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            code, message = exc.status_code, exc.detail
        else:  # the store went away after start-up
            code = 503
            message = f"the compose store cannot be read: {str(exc).splitlines()[0]}"
            log.warning("%s %s: %s", request.method, request.url.path, message)
        if request.url.path.startswith("/api/"):
            return self.api({"error": message, "status": code}, code)
        return self.page("error.html", code, title=f"{code}", message=message, code=code)


def create_app(engine: Engine, config=None, *, clock: Callable[[], dt.datetime] = _utcnow,
               poll_ms: int = POLL_MS, hosts: HostCheck | None = None,
               waiting: WaitingCache | None = None) -> Starlette:
    """`hosts`: the Host check `rel-eng serve` always installs (see hosts.py); `waiting`: the
    cached ask for queues no worker serves (waiting.py)."""
    d = Dashboard(engine, config, clock=clock, poll_ms=poll_ms, waiting=waiting)
    routes = [
        Route("/", d.list_page, methods=["GET"]),
        Route("/composes/{compose_id}", d.compose_page, methods=["GET"]),
        Route("/composes/{compose_id}/logs/{path:path}", d.log_file, methods=["GET"]),
        Route("/schedule", d.schedule_page, methods=["GET"]),
        Route("/api/composes", d.api_composes, methods=["GET"]),
        Route("/api/composes/{compose_id}", d.api_compose, methods=["GET"]),
        Route("/api/schedule", d.api_schedule, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("rel_eng.web", "static")]), name="static"),
    ]
    middleware = [Middleware(HostCheckMiddleware, check=hosts)] if hosts is not None else []
    return Starlette(routes=routes, middleware=middleware, exception_handlers={
        HTTPException: d.error, SQLAlchemyError: d.error})
