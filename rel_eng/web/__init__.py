"""Web pages: the static download pages staged with every drop, and the `rel-eng serve` dashboard.

    templating.py   the Jinja2 environment (autoescape on for every template) and the stylesheet
    drop_page.py    index.html at the top of a drop, from plan, manifest and compose/metadata
    stream.py       per weekly stream: index.html, drops.atom and releases.json from the mirror
    dashboard/      the read-only Starlette app over the compose store (`rel-eng serve`)
"""
