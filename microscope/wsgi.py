"""The web process's entry point (gunicorn ``microscope.wsgi:application``).

Startup creates about 140,000 objects that live as long as the process: modules, classes,
the URLconf. The cyclic garbage collector would scan them again and again while they are
made, and at every full collection after, for nothing. So it is off while the application
and its URLconf load, and what they made is then frozen out of its reach (``gc.freeze``);
it collects what requests make as usual. Measured with ``bench/web.py``: the first response
comes about a quarter sooner.
"""

from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")
collecting = gc.isenabled()  # a host may have turned it off itself (before a fork, say)
gc.disable()
try:
    application = get_wsgi_application()
    # The pages' URLconf and views load now; the API's on its first request.
    get_resolver("microscope.page_urls").url_patterns  # noqa: B018
finally:
    gc.freeze()
    if collecting:
        gc.enable()
