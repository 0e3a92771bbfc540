"""`[release]`: where a blessed milestone candidate goes in the mirror (rel_eng.release)."""

from __future__ import annotations

from dataclasses import dataclass

from rel_eng.config.table import Section, setting

_FIELDS = ("{version}", "{milestone}")


def _template(text: str) -> str | None:
    """A mirror-relative template: plain parts, only {version} and {milestone} substituted."""
    probe = text
    for f in _FIELDS:
        probe = probe.replace(f, "x")
    if "{" in probe or "}" in probe:
        return f"{text!r} may only use {', '.join(_FIELDS)}"
    parts = probe.split("/")
    if not probe or probe.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return f"{text!r} must be a relative path inside the mirror, without '.' or '..'"
    return None


@dataclass(frozen=True)
class ReleaseConfig(Section):
    prerelease_dir: str = setting("fedora/linux/releases/test/{version}_{milestone}",
                                  "where an Alpha or Beta is released (mirror-relative; the "
                                  "release owns only <dir>/<variant>/)", valid=_template)
    final_dir: str = setting("fedora/linux/releases/{version}",
                             "where Final (an RC candidate) is released (mirror-relative)",
                             valid=_template)
    pages_dir: str = setting("fedora/linux/releases/cloud", "where the releases' own index.html "
                             "and releases.json go (mirror-relative; every open release listed)",
                             valid=_template)
    closed_mode: int = setting(0o700, "mode of the release's top dir under --closed until "
                               "--open", low=0, high=0o777, octal=True)
    replaced_amis: str = setting("private", "what --replace and --withdraw do to the old "
                                 "candidate's AMIs", choices=("private", "deprecate"))

    def release_dir(self, version: str, milestone: str) -> str:
        template = self.final_dir if milestone == "Final" else self.prerelease_dir
        return template.replace("{version}", version).replace("{milestone}", milestone)
