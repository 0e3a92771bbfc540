"""Fakes keep the signature of what they stand for: a fake that drifted proves nothing.

A test double whose methods are copied from a real class (a builder, a runner function) checks
here that its parameters (names, kinds, defaults; annotations aside) are still the real ones.
"""

from __future__ import annotations

import inspect


def params(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def assert_same_signature(fake, real) -> None:
    assert params(fake) == params(real), (
        f"{fake.__qualname__}{inspect.signature(fake)} does not match "
        f"{real.__module__}.{real.__qualname__}{inspect.signature(real)}")


def assert_overrides_match(fake_cls: type) -> int:
    """Every method `fake_cls` overrides has its real base's signature; returns how many."""
    real = next(b for b in fake_cls.__mro__[1:] if b.__module__.startswith("rel_eng."))
    checked = 0
    for name, attr in vars(fake_cls).items():
        if inspect.isfunction(attr) and hasattr(real, name):
            assert_same_signature(attr, getattr(real, name))
            checked += 1
    assert checked, f"{fake_cls.__qualname__} overrides nothing of {real.__qualname__}"
    return checked
