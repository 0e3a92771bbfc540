"""Subcommands of `rel-eng`; each module has `register(subparsers)`."""
