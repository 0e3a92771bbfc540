"""`rel-eng serve`: a read-only dashboard over the compose store (Starlette, served by uvicorn).

    views.py   store rows -> what a page shows: timelines, task links, log excerpts (pure-ish)
    logs.py    log files served only from inside a compose's logs/ directory
    app.py     the Starlette app: HTML pages, the JSON API, static files; GET only
    server.py  bind address checks and start-up (one clear line, exit 2, on bad input)
"""
