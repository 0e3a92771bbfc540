"""Reading a TOML file, every way it can fail told as one line with the file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from rel_eng.errors import ConfigError
from rel_eng.inputfile import InputTooLarge, read_capped


def read_toml(path: Path, named_by: str = "") -> dict:
    """The parsed file; `named_by` is the config key that names it, told when it is missing."""
    try:
        return tomllib.loads(read_capped(path).decode())
    except InputTooLarge as exc:
        raise ConfigError([str(exc)]) from None
    except FileNotFoundError:
        where = f" (set {named_by} in the config)" if named_by else ""
        raise ConfigError([f"{path}: file not found{where}"]) from None
    except IsADirectoryError:
        where = f" ({named_by})" if named_by else ""
        raise ConfigError([f"{path}: is a directory, expected a TOML file{where}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: invalid TOML: not UTF-8 text"]) from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise ConfigError([f"{path}: invalid TOML: nested too deeply"]) from None
