"""`rel-eng verify DIR|DROP`: re-check a compose dir or a staged mirror drop end to end."""

from __future__ import annotations

import sys
from pathlib import Path

from rel_eng.commands import common


def register(sub) -> None:
    p = sub.add_parser("verify", help="re-check a compose dir or staged drop: sizes, sha256, "
                                      "CHECKSUM files, signatures, stray files")
    p.add_argument("path", type=Path, metavar="DIR|MIRROR_DROP",
                   help="a compose dir (<output>/<compose id>) or a staged mirror drop")
    p.add_argument("--gpg-home", metavar="DIR",
                   help="gpg home holding the signing key (default: [signing] gpg_home)")
    p.add_argument("--key", metavar="KEY",
                   help="signatures must be by this key (default: [signing] key; none: any key "
                        "in the keyring)")
    p.add_argument("--require-signed", action="store_true",
                   help="an unsigned CHECKSUM file is a problem "
                        "(default: when [signing] key is set)")
    common.add_config_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    signing = common.load(args).signing
    from rel_eng import verify  # late: once the flags and the config are good

    # a release tree's CHECKSUM copies carry [signing] release_key's signature
    also = "" if args.key or verify.release_prefix(verify.find_root(args.path)) is None \
        else signing.release_key
    rep = verify.verify_tree(args.path, args.gpg_home or signing.gpg_home,
                             args.require_signed or signing.enabled or bool(also),
                             args.key or signing.key, also_key=also)
    for line in rep.problems:
        print(line)
    if rep.problems:
        print(f"rel-eng: error: {rep.root}: {len(rep.problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"verified: {rep.root}: {rep.checked} file(s) by size and sha256, "
          f"{rep.signatures} signature(s), no stray file")
    return 0
