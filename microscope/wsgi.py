from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")
application = get_wsgi_application()

# Load every view now (and through them torch's organism registry: ~400k objects), then take
# those long-lived objects out of the garbage collector's sight. Otherwise each full
# collection walks them all, and a request now and then waits ~200 ms for it (bench/api.py).
get_resolver().url_patterns  # noqa: B018
gc.freeze()
