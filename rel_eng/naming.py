"""Pungi/productmd naming: compose ids, labels, image version/release, NVRA and file names."""

from __future__ import annotations

import re

from rel_eng.errors import InputError

ARCHES = ("i686", "x86_64")  # the arches a compose builds (config's compose.arches)

# productmd compose type -> compose id suffix
TYPE_SUFFIX = {"production": "", "nightly": ".n", "test": ".t", "ci": ".ci"}
# Final ships from a release candidate.
LABEL_NAMES = {"Alpha": "Alpha", "Beta": "Beta", "Final": "RC"}
OZ_ARCH = {"i686": "i386", "x86_64": "x86_64"}
# The one label syntax (--label, the drops a mirror holds, image releases): numbers from 1,
# no leading zeros, at most four digits; [0-9], not \d (no other scripts' digits). Use it with
# fullmatch (a $ would let a trailing newline through).
LABEL_RE = re.compile(r"(Alpha|Beta|RC)-([1-9][0-9]{0,3})\.([1-9][0-9]{0,3})")


def compose_id(short: str, version: str, date: str, compose_type: str, respin: int) -> str:
    """`Fedora-Cloud-19-20130405.0`, `Fedora-Cloud-Rawhide-20130405.n.0`."""
    return f"{short}-{version}-{date}{TYPE_SUFFIX[compose_type]}.{respin}"


def label(milestone: str, minor: int, major: int = 1) -> str:
    """`Alpha-1.1`; Final becomes `RC-1.x`."""
    return f"{LABEL_NAMES[milestone]}-{major}.{minor}"


def image_version_release(
    version: str, label_: str | None, date: str, compose_type: str, respin: int
) -> tuple[str, str]:
    """Labelled: (`19_Alpha`, `1.1`), RC keeps the plain version; unlabelled: (`Rawhide`, `20130405.n.0`)."""
    if label_:
        m = LABEL_RE.fullmatch(label_)
        if not m:
            raise InputError(f"label {label_!r} is not of the form NAME-MAJOR.MINOR",
                             hint="e.g. Beta-1.2 (Alpha, Beta or RC; numbers from 1)")
        name, major, minor = m.groups()
        v = version if name == "RC" else f"{version}_{name}"
        return v, f"{major}.{minor}"
    return version, f"{date}{TYPE_SUFFIX[compose_type]}.{respin}"


def nvra(name: str, version: str, release: str, arch: str) -> str:
    return f"{name}-{version}-{release}.{arch}"


def stage_dir(version: str, label_: str) -> str:
    """Milestone mirror directory name, e.g. `19_Alpha-1.1`, `19_RC-1.3`."""
    return f"{version}_{label_}"


def checksum_file(short: str, version: str, label_: str | None, release: str, arch: str) -> str:
    """`Fedora-Cloud-19_Beta-1.2-x86_64-CHECKSUM`; weeklies: `Fedora-Cloud-Rawhide-20130405.n.0-x86_64-CHECKSUM`."""
    if label_:
        name, _, rest = label_.partition("-")
        v = version if name == "RC" else f"{version}_{name}"
        return f"{short}-{v}-{rest}-{arch}-CHECKSUM"
    return f"{short}-{version}-{release}-{arch}-CHECKSUM"


# One rule for every config value that becomes a file or directory name (image names and keys,
# release keys and versions, variant, short, stream names, labels): a plain name that cannot
# climb out of, or hide in, the directory it is joined to.
# A POSIX user name: the portable filename characters, not starting with "-" (it would read
# as an option) or a digit or ".", at most 32 bytes (useradd's limit). It becomes an ssh
# argument, cloud-init user-data and README text, so nothing else is let through.
USER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")


def user_name_problem(value: object) -> str | None:
    """Why `value` is not a POSIX user name (None when it is one)."""
    if not isinstance(value, str) or not USER_NAME_RE.match(value):
        return (f"{value!r:.60} is not a POSIX user name (letters, digits, '_', '.', '-', "
                "starting with a letter or '_', at most 32 characters)")
    return None


PATH_COMPONENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
PATH_COMPONENT_MAX = 100


def path_component_problem(value: object) -> str | None:
    """What makes `value` unfit to be one path component, or None when it is fine."""
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > PATH_COMPONENT_MAX:
        return f"is {len(value)} characters long (at most {PATH_COMPONENT_MAX})"
    if ".." in value or not PATH_COMPONENT_RE.match(value):
        return (f"{value!r} may hold only letters, digits, '.', '_', '+' and '-', starting with a "
                "letter or digit, and no '..'")
    return None


# Deliverables per image: (file suffix, productmd image type, productmd image format). Config
# validates [compose] outputs against the suffixes; the planner names the files.
OUTPUT_FORMATS = (
    ("qcow2", "qcow2", "qcow2"),
    ("raw.tar.xz", "raw-xz", "tar.xz"),
    ("raw.xz", "raw-xz", "raw.xz"),
)

# qcow2 cluster compression: zlib is read by every qemu; zstd needs qemu >= 5.1 built with
# zstd, and a qcow2 v3 header (compat=1.1, qemu >= 1.1); none writes plain clusters.
QCOW2_COMPRESSION = ("zlib", "zstd", "none")
