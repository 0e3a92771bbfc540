"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from pathlib import Path

from rel_eng.config import MILESTONES, Config, load_config
from rel_eng.errors import InputError


def add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="pipeline config (TOML); defaults need none")
    p.add_argument("--releases", type=Path, help="release definitions (TOML)")


def add_drop_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--release", required=required, help="release key, e.g. 19 or rawhide")
    kind = p.add_mutually_exclusive_group(required=required)
    kind.add_argument("--milestone", choices=MILESTONES, help="milestone drop")
    kind.add_argument("--weekly", action="store_true", help="weekly scratch drop")
    p.add_argument("--date", type=_date, help="compose date YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--allow-future-date", action="store_true",
                   help="accept a --date more than a day ahead of today (UTC); a weekly dated "
                        "in the future would hold `latest` until that date")
    p.add_argument("--builder", help="builder backend (default from config: synthetic)")
    p.add_argument("--koji-profile", metavar="NAME",
                   help="koji client profile (/etc/koji.conf, ~/.koji/config) for --builder koji")


# Compose ids carry the date as 8 digits, and file times derive from it: no date before the
# epoch (years below 1000 would not even fill the 8 digits).
EARLIEST_DATE = dt.date(1970, 1, 1)
FUTURE_SLACK = dt.timedelta(days=1)  # another time zone's "today" is still today


def _date(text: str) -> dt.date:
    try:
        date = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None
    if date < EARLIEST_DATE:
        raise argparse.ArgumentTypeError(f"'{text}' is before {EARLIEST_DATE} (name the compose's "
                                         "real date)")
    return date


def load(args) -> Config:
    config = load_config(args.config, args.releases)
    profile = getattr(args, "koji_profile", None)
    if profile:
        config = dataclasses.replace(config, koji=dataclasses.replace(config.koji, profile=profile))
    return config


def date_of(args, now: dt.datetime | None = None) -> dt.date:
    """The compose date: --date, or today (UTC). A date more than a day ahead is refused unless
    --allow-future-date: a far-future weekly would pin `latest` and prune the real drops."""
    today = (now or dt.datetime.now(dt.timezone.utc)).date()
    if args.date is None:
        return today
    if args.date > today + FUTURE_SLACK and not getattr(args, "allow_future_date", False):
        raise InputError(f"--date {args.date} is more than a day ahead of today ({today}, UTC)",
                         hint="use today's date, or add --allow-future-date if this is meant")
    return args.date


def check_builder(config: Config, name: str | None, koji_profile: str | None = None) -> None:
    from rel_eng.builders import BUILDERS

    if name is not None and name not in BUILDERS:
        raise InputError(f"unknown builder '{name}'", hint=f"use one of {', '.join(sorted(BUILDERS))}")
    if koji_profile is not None and (name or config.builder) != "koji":
        raise InputError(f"--koji-profile applies only to the koji builder, not "
                         f"'{name or config.builder}'", hint="add --builder koji, or drop --koji-profile")


def check_loglevel(level: str) -> None:
    import logging

    names = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    if not isinstance(logging.getLevelName(level.upper()), int) or level.upper() not in names:
        raise InputError(f"--loglevel {level!r} is not a log level", hint=f"use one of {', '.join(names)}")


def open_store(url: str, **kw):
    """The store's engine for a command that only reads or reports: a store that cannot be
    opened (unreachable, not a database) is the user's to fix, exit 2."""
    from rel_eng.store.engine import StoreUnavailable, open_engine

    try:
        return open_engine(url, **kw)
    except StoreUnavailable as exc:
        raise InputError(exc.message, hint=exc.hint) from None
