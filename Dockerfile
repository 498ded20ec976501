# syntax=docker/dockerfile:1
# evoarena: paper-trading bots on Kalshi (places no orders). Multi-stage:
#   build   — a venv with the pinned dependencies (own layer, cached until pyproject.toml or
#             constraints.txt change), then the project itself without dependencies;
#   runtime — that venv on the same slim base, no pip, tini as PID 1, a health check on /healthz.
# The base is pinned by digest (python:3.11.10-slim-bookworm, linux multi-arch index); bump both
# tag and digest together, deliberately.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml constraints.txt ./
# Dependencies only: the list comes from pyproject.toml, the versions from constraints.txt.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/evoarena \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/deps.txt \
 && /opt/evoarena/bin/pip install -c constraints.txt -r /tmp/deps.txt
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/evoarena/bin/pip install --no-deps -c constraints.txt . \
 && /opt/evoarena/bin/python -m pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="evoarena" \
      org.opencontainers.image.description="Evolves paper-trading bots on Kalshi (paper only: places no orders)"
# tini reaps and forwards SIGTERM, so `docker stop` ends in a clean checkpoint, not SIGKILL.
# pip and setuptools are removed from the base: nothing installs anything at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/* \
 && python -m pip uninstall --yes pip setuptools wheel \
 && rm -f /usr/local/bin/pip* \
 && groupadd --system --gid 10001 evoarena \
 && useradd --system --uid 10001 --gid evoarena --home-dir /state --shell /usr/sbin/nologin evoarena \
 && mkdir -p /state /config /recordings \
 && chown evoarena:evoarena /state /recordings
COPY --from=build /opt/evoarena /opt/evoarena
# numba compiles the tick's kernels at the first tick and caches them; the image and its
# site-packages are read-only at run time, /tmp is a tmpfs (see deploy/evoarena.service).
ENV PATH="/opt/evoarena/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    EVOARENA_STATE__DIR=/state \
    EVOARENA_METRICS__ENABLED=true \
    EVOARENA_METRICS__HOST=0.0.0.0 \
    EVOARENA_METRICS__PORT=9464
USER 10001:10001
WORKDIR /state
VOLUME ["/state", "/recordings"]
EXPOSE 9464
# 200 while frames arrive and ticks are on time (see [metrics]); the first books can take minutes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5m --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "evoarena"]
CMD ["run", "--config", "/config/prod.toml"]
