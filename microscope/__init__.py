"""The project: settings, URLs, the WSGI entry point, and the name workers start the Celery
app by (``microscope.celery``)."""
