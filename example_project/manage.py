#!/usr/bin/env python
"""Django's command-line utility for the demo shop.

Run from anywhere: ``python example_project/manage.py demo``.
"""

import os
import sys
from pathlib import Path


def main():
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    try:
        import transactional_mail  # noqa: F401
    except ImportError:
        # A checkout that was not pip-installed: use the package next to this folder.
        sys.path.insert(1, str(here.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
