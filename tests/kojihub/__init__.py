"""A Koji hub for tests: real XML-RPC over HTTPS on 127.0.0.1, kojihub's signatures and faults,
a simulated kojid, real image files, and injectable failures. See server.py and hub.py."""

from .assets import Certs, Images, make_certs, make_images
from .hub import Injections
from .server import KojiTestHub

__all__ = ["Certs", "Images", "Injections", "KojiTestHub", "make_certs", "make_images"]
