"""Where the project's shipped inputs live (kickstarts, TDL templates, release definitions)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KICKSTART_DIR = PROJECT_ROOT / "kickstarts"
TDL_DIR = PROJECT_ROOT / "tdl"
RELEASES_FILE = PROJECT_ROOT / "schedules" / "releases.toml"
