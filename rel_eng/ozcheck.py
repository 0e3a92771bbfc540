"""Run by the system python (which has Debian's `oz`): validate TDLs with oz.TDL.TDL.

stdin: JSON {name: tdl_xml}; stdout: JSON {name: error} for the invalid ones.
"""

import json
import sys

import oz.TDL


def main():
    tdls = json.load(sys.stdin)
    errors = {}
    for name, xml in tdls.items():
        try:
            oz.TDL.TDL(xml)
        except Exception as exc:  # oz raises OzException, lxml XMLSyntaxError and others
            errors[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    json.dump(errors, sys.stdout)


if __name__ == "__main__":
    main()
