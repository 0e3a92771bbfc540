"""rel-eng: builds, post-processes, stages and publishes Fedora cloud image drops."""

__version__ = "0.1.0"
