"""``python -m transactional_mail.starters record``: add the new fingerprints.

Run it after changing a starter and raising its ``version``: it records that version's
fingerprints in the starter's ``history.json``, so that sites whose template still holds
the previous version get the new one from ``install_starter_templates``. It also records
the default layout's HTML, CSS and footer as a new version in ``layouts/history.json``
when they changed (``migrate`` then upgrades the sites still holding an earlier one).
"""

from __future__ import annotations

import sys

from ..default_layout import record_layout_version
from . import DIRECTORY, StarterError, load_starter, record_fingerprints, starter_directories


def main(argv: list[str]) -> int:
    """Record the fingerprints of every starter (or of the keys given); print what changed."""
    if not argv or argv[0] != "record":
        print("usage: python -m transactional_mail.starters record [KEY ...]", file=sys.stderr)
        return 2
    keys = set(argv[1:])
    try:
        for directory in starter_directories(DIRECTORY):
            if keys and directory.name not in keys:
                continue
            starter = load_starter(directory)
            if record_fingerprints(starter):
                print(f"{starter.key}: recorded version {starter.version}")
    except StarterError as err:
        print(err, file=sys.stderr)
        return 1
    if not keys:
        version = record_layout_version()
        if version:
            print(f"default layout: recorded version {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
