"""`rel-eng worker` with the test builders registered: `python distributed_worker.py worker ...`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import distributed_builders  # noqa: E402
from appliance_builder import ApplianceBuilder  # noqa: E402

from rel_eng.cli import main  # noqa: E402

if __name__ == "__main__":
    distributed_builders.register()
    distributed_builders.BUILDERS.setdefault(ApplianceBuilder.name, ApplianceBuilder)
    sys.exit(main(sys.argv[1:]))
