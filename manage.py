#!/usr/bin/env python
from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:  # a bad environment variable: say which, no traceback
        sys.exit(f"configuration: {error}")
    except OperationalError as error:  # a database that does not answer, or is not migrated
        if "--traceback" in sys.argv:
            raise
        said = str(error).strip().splitlines()
        sys.exit(
            f"database: {said[0] if said else type(error).__name__} (see DATABASE_URL; a new "
            "database needs `manage.py migrate`; --traceback shows where)"
        )
