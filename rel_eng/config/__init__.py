"""Settings: TOML parsed once into frozen, typed objects (one module per table).

    problems.py   the one problem collector (file: key: what is wrong), used by every parser
                  and by `rel-eng validate`
    table.py      `setting`/`section` declarations, the one parser (parse_table) that walks
                  them, and the JSON round trip (Section.to_dict / from_dict)
    model.py      Config: the [compose] keys and one `section` field per table
    compose tables: signing.py, images.py, koji.py, oz.py, ec2.py, celery.py, store.py,
                  schedule.py (and the streams file), messaging.py, boot_test.py, web.py
    releases.py   releases.toml
    load.py       load_config: the three files, every problem reported at once

Feature modules import their section from here; nothing here imports a feature module or a
backend library (koji, boto3 and SQLAlchemy are imported late, only to check a value that
needs them).
"""

from rel_eng.config.boot_test import BootTestConfig
from rel_eng.config.celery import CelerySettings
from rel_eng.config.ec2 import Ec2Config
from rel_eng.config.images import ImageType
from rel_eng.config.koji import KojiConfig
from rel_eng.config.load import load_config
from rel_eng.config.messaging import MessagingConfig
from rel_eng.config.model import Config
from rel_eng.config.oz import OzConfig
from rel_eng.config.problems import Problems
from rel_eng.config.releases import MILESTONES, Release
from rel_eng.config.schedule import ScheduleConfig, Stream
from rel_eng.config.signing import Signing
from rel_eng.config.store import StoreConfig
from rel_eng.config.web import WebConfig
from rel_eng.naming import ARCHES

__all__ = ["ARCHES", "MILESTONES", "BootTestConfig", "CelerySettings", "Config", "Ec2Config",
           "ImageType", "KojiConfig", "MessagingConfig", "OzConfig", "Problems", "Release",
           "ScheduleConfig", "Signing", "Stream", "StoreConfig", "WebConfig", "load_config"]
