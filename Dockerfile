# syntax=docker/dockerfile:1
# Tranche's container image. Untested here (no container runtime on the machine that wrote
# it); docs/deploy.md is the tested way. Two stages: the first builds the virtual
# environment from the lock file, the second is Debian 12's slim Python with the system
# libraries invoice PDFs need (pango, harfbuzz's subsetter, a font) and that environment.
#
#   docker build -t tranche .
#   docker run … tranche                                   the web server on port 8000
#   docker run … tranche tranche worker                    the background worker
#   docker run … tranche tranche migrate                   before starting a new release
# compose.yaml runs all three beside PostgreSQL.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/tranche/venv
# The dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock /src/requirements.lock
RUN /opt/tranche/venv/bin/pip install -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY tranche /src/tranche
RUN /opt/tranche/venv/bin/pip install --no-deps /src

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/tranche \
        --shell /usr/sbin/nologin tranche \
    && install -d -o tranche -g tranche -m 0700 /var/lib/tranche
COPY --from=build /opt/tranche/venv /opt/tranche/venv
ENV PATH=/opt/tranche/venv/bin:$PATH \
    VAR_DIR=/var/lib/tranche \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER tranche
WORKDIR /var/lib/tranche
# Collected static files and uploaded logos: share it between the web and the worker.
VOLUME ["/var/lib/tranche"]
EXPOSE 8000
# Migrations are a separate step (`tranche migrate`, compose's migrate service): several
# web containers starting at once must not each run them.
CMD ["tranche", "run", "--no-worker", "--no-migrate", "--host", "0.0.0.0", "--port", "8000"]
