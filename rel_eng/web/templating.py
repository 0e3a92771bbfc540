"""One Jinja2 environment for every page. Autoescaping is on for all templates, whatever their
file name: every value from a config, a release file or the store is text, never markup."""

from __future__ import annotations

import functools
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

STYLESHEET = "style.css"


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("rel_eng.web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["size"] = human_size
    env.filters["when"] = when
    env.globals["stylesheet"] = stylesheet
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


@functools.lru_cache(maxsize=1)
def stylesheet() -> Markup:
    """The stylesheet inlined into static pages, so a drop's page is one self-contained file.
    It is the package's own file, so it is the one thing marked safe."""
    return Markup(static_text(STYLESHEET))


def static_text(name: str) -> str:
    return resources.files("rel_eng.web").joinpath("static", name).read_text()


def human_size(n) -> str:
    try:
        n = int(n)
    except (TypeError, ValueError):
        return "-"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def when(iso) -> str:
    """ISO time -> 'YYYY-MM-DD HH:MM:SS' (UTC), '-' when unknown."""
    return str(iso)[:19].replace("T", " ") if iso else "-"
