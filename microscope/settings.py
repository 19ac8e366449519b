"""Settings, all from the environment, with local defaults that just work.

Default: SQLite file, Celery over the filesystem (no broker server), media on disk,
all under ./var. Production sets DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL
(Redis or RabbitMQ), and runs many GPU workers on the `gpu` queue.
"""

from __future__ import annotations

from pathlib import Path

from microscope.env import (
    broker_url,
    database_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_rate,
    env_str,
    folder,
    local_secret_key,
    s3_storages,
    site_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MICROSCOPE_VAR_DIR", str(BASE_DIR / "var")))

# Safe to expose by default: DEBUG (Django's technical pages, which list every URL and
# setting) is opt-in for development, DJANGO_DEBUG=1.
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "") or local_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_filters",
    "django.contrib.humanize",
    # Not "rest_framework": the API renders JSON only, so it needs none of DRF's templates,
    # and Django would import DRF's template tags (and so most of DRF) for the first page.
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "neurons",
    "people",
    "annotations",
    "api",
    "jobs",
    "axes",
]

# Logins: after MICROSCOPE_LOGIN_FAILURES wrong passwords for one username from one address,
# that pair is locked out for an hour (django-axes); a right password resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("MICROSCOPE_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = 1  # hour
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "api.clients.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # no banner on every command
# Password reset mails: printed on the console unless an SMTP server is configured.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "microscope@localhost")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "microscope.middleware.pages_urlconf",
    "microscope.middleware.DatabaseBusy",
    "microscope.middleware.QueryCheck",
    "microscope.middleware.body_limit",
    "microscope.middleware.reject_undecodable_forms",
    # Static files without DEBUG, from the apps' folders (no collectstatic needed; run it in
    # production for compressed, cacheable files).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "api.middleware.rate_limit_headers",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "microscope.urls"
WSGI_APPLICATION = "microscope.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {"default": database_url(env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0), VAR_DIR)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    folder(Path(DATABASES["default"]["NAME"]).parent, "DATABASE_URL")
    # The site and its worker write to one SQLite file; wait for locks instead of failing.
    # IMMEDIATE: a transaction takes the write lock as it begins, so that two that read and
    # then write wait their turn rather than one failing at once ("database is locked").
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int(
            "MICROSCOPE_SQLITE_TIMEOUT", 20, minimum=0
        ),  # seconds a write waits its turn
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# Per-process memory by default; CACHE_URL=redis://... shares API throttle counts between
# the processes of a deployment.
if env_str("CACHE_URL", ""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_choice(
                "CACHE_URL", "", r"(redis|rediss|unix)://.+", "redis://host:6379/0"
            ),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "microscope" / "static"]
WHITENOISE_USE_FINDERS = True
folder(STATIC_ROOT, "MICROSCOPE_VAR_DIR")  # where collectstatic puts them
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Where model weights are kept (add_model --weights copies files here).
WEIGHTS_DIR = Path(env_str("MICROSCOPE_WEIGHTS_DIR", str(VAR_DIR / "weights")))

# The largest request body read: Django's default, 2.5 MB (a claim or a form is a few KB;
# parsing JSON takes some 20 times its size in memory), but for an import (staff only),
# whose document of thousands of claims is bigger. Past them: a 413 that says the limit
# (microscope.middleware.body_limit). Files uploaded are limited on their own.
MICROSCOPE_MAX_BODY = env_int("MICROSCOPE_MAX_BODY_KB", 2560) * 2**10
MICROSCOPE_MAX_IMPORT = env_int("MICROSCOPE_MAX_IMPORT_MB", 32) * 2**20
DATA_UPLOAD_MAX_MEMORY_SIZE = max(MICROSCOPE_MAX_BODY, MICROSCOPE_MAX_IMPORT)

# Sign-up, password changes and `user_create --password-stdin` check passwords with these.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Reverse proxies in front of the site whose X-Forwarded-For is trusted (0: none, a client's
# address is the connection's): the API's throttles and the login lockout count per address
# (api.clients.client_ip).
MICROSCOPE_TRUSTED_PROXIES = env_int("MICROSCOPE_TRUSTED_PROXIES", 0, minimum=0)
# This instance's address, as exports name their source and imports know their own people.
MICROSCOPE_SITE_URL = site_url()

REST_FRAMEWORK = {
    # JSON only: the browsable HTML renderer needs a serializer per view; /api/docs/ is the
    # page for people.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.JSONParser",
        "api.parsers.FormParser",
        "api.parsers.MultiPartParser",
    ],
    "DEFAULT_METADATA_CLASS": "api.metadata.EndpointMetadata",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pages",
    "PAGE_SIZE": 100,
    # Anyone reads; writes need a personal token (scripts) or a session with CSRF (browser).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.AnonThrottle", "api.throttling.UserThrottle"],
    # e.g. "600/min"; empty turns a throttle off. Counted in the default cache (CACHE_URL).
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("API_THROTTLE_ANON", "600/min"),
        "user": env_rate("API_THROTTLE_USER", "6000/min"),
    },
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Microscope API",
    "DESCRIPTION": "Models, layers and neurons of vision model organisms, and claims about them.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from this site, not a CDN: works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ClaimKindEnum": "annotations.models.Kind",
    },
}

# The longest a render job may run (then it stops, keeping what it rendered).
MICROSCOPE_RENDER_SOFT_TIME_LIMIT = env_int("MICROSCOPE_RENDER_SOFT_TIME_LIMIT", 6 * 3600)

# Celery: the embedded default is a broker on the filesystem, which needs no server.
CELERY_BROKER_URL = broker_url("filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        folder(_broker_dir / _sub, "MICROSCOPE_VAR_DIR")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Render jobs go to the GPU workers: `celery -A microscope worker -Q gpu --concurrency 1`.
CELERY_TASK_ROUTES = {"jobs.tasks.render_task": {"queue": "gpu"}}
# Long tasks acked late: a worker takes one message at a time.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A job may run up to MICROSCOPE_RENDER_SOFT_TIME_LIMIT: the broker must not hand its
# message to another worker while it runs (Redis' visibility timeout), and a worker must not
# hold a second message unacked for that long (no prefetch, Redis only). RabbitMQ's
# consumer_timeout (30 min by default) is a server setting: see the README.
CELERY_WORKER_DISABLE_PREFETCH = CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
if CELERY_WORKER_DISABLE_PREFETCH:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": MICROSCOPE_RENDER_SOFT_TIME_LIMIT + 3600
    }

# Renders (jobs app). Device: "" picks cuda when there is one, else cpu.
MICROSCOPE_RENDER_DEVICE = env_choice(
    "MICROSCOPE_RENDER_DEVICE", "", r"|cpu|cuda(:[0-9]+)?|mps", "cpu, cuda, cuda:1"
).lower()  # torch reads "cuda", not "CUDA"
MICROSCOPE_RENDER_BATCH = env_int("MICROSCOPE_RENDER_BATCH", 32)  # channels optimized at once
MICROSCOPE_RENDER_STEPS = env_int("MICROSCOPE_RENDER_STEPS", 512)  # default budget of requests
MICROSCOPE_RENDER_SIZE = env_int("MICROSCOPE_RENDER_SIZE", 128)
MICROSCOPE_EXAMPLES_BATCH = env_int("MICROSCOPE_EXAMPLES_BATCH", 32)
# The corpus the neuron page's button sweeps (relative paths are relative to the project).
MICROSCOPE_EXAMPLES_DIR = env_str("MICROSCOPE_EXAMPLES_DIR", "demo/photos")
# Random channels (or channel sets) per baseline of a circuit claim's evidence: p-values
# are (k + 1) / (n + 1), so n = 100 resolves p down to 0.0099.
MICROSCOPE_EVIDENCE_DRAWS = env_int("MICROSCOPE_EVIDENCE_DRAWS", 100)
# A running job whose heartbeat (written every sixth of this) is older than this belongs to
# a dead worker: every worker sweeps the jobs every MICROSCOPE_JOB_SWEEP_SECONDS and queues
# such a job again. A queued job unclaimed for MICROSCOPE_JOB_REPUBLISH_SECONDS (doubling
# with each publish) is published again: its message may be lost. A job whose database
# connection is lost goes back to the queue, MICROSCOPE_JOB_ATTEMPTS claims in all.
# Jobs one researcher may have waiting or running at once (staff: any number).
MICROSCOPE_JOBS_PER_PERSON = env_int("MICROSCOPE_JOBS_PER_PERSON", 20)
MICROSCOPE_JOB_STALE_SECONDS = env_int("MICROSCOPE_JOB_STALE_SECONDS", 30)
MICROSCOPE_JOB_SWEEP_SECONDS = env_int("MICROSCOPE_JOB_SWEEP_SECONDS", 10)
MICROSCOPE_JOB_REPUBLISH_SECONDS = env_int("MICROSCOPE_JOB_REPUBLISH_SECONDS", 60)
MICROSCOPE_JOB_ATTEMPTS = env_int("MICROSCOPE_JOB_ATTEMPTS", 5)
# Images uploaded to /explore/: bytes and pixels at most (checked before decoding).
MICROSCOPE_UPLOAD_MAX_BYTES = env_int("MICROSCOPE_UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
MICROSCOPE_UPLOAD_MAX_PIXELS = env_int("MICROSCOPE_UPLOAD_MAX_PIXELS", 40_000_000)
# A worker records a job's progress at most this often (a write, and the moment it sees
# that the job was cancelled).
MICROSCOPE_JOB_PROGRESS_MS = env_int("MICROSCOPE_JOB_PROGRESS_MS", 500, minimum=0)
# Models a worker process keeps loaded (0: none).
MICROSCOPE_MODEL_CACHE = env_int("MICROSCOPE_MODEL_CACHE", 2, minimum=0)

# Media on disk by default; MICROSCOPE_S3_BUCKET puts it in S3-compatible object storage
# (pip install "microscope[s3]"; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
if env_str("MICROSCOPE_S3_BUCKET", ""):
    STORAGES = s3_storages()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice(
            "LOG_LEVEL", "INFO", "DEBUG|INFO|WARNING|ERROR|CRITICAL", "INFO or DEBUG"
        ).upper(),
    },
}
