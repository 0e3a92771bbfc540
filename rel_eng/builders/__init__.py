"""Builders behind one small interface (base.Builder), in a registry by name.

No builder knows about another. The Koji and Oz builders plug in here.
"""

from rel_eng.builders.base import Builder, BuildHandle, BuildOutcome, BuildRequest
from rel_eng.builders.koji import KojiBuilder
from rel_eng.builders.oz import OzBuilder
from rel_eng.builders.synthetic import SyntheticBuilder

BUILDERS: dict[str, type[Builder]] = {
    SyntheticBuilder.name: SyntheticBuilder,
    OzBuilder.name: OzBuilder,
    KojiBuilder.name: KojiBuilder,
}

__all__ = ["BUILDERS", "Builder", "BuildHandle", "BuildOutcome", "BuildRequest"]
