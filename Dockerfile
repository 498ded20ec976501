# syntax=docker/dockerfile:1
# Multi-stage: build a wheel with the pinned dependency set, install into a slim runtime image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN python -m venv /opt/evoarena \
 && /opt/evoarena/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/evoarena/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="evoarena" \
      org.opencontainers.image.description="Evolves paper-trading bots on Kalshi (paper only: places no orders)"
RUN groupadd --system --gid 10001 evoarena \
 && useradd --system --uid 10001 --gid evoarena --home-dir /state --shell /usr/sbin/nologin evoarena \
 && mkdir -p /state /config /recordings && chown evoarena:evoarena /state /recordings
COPY --from=build /opt/evoarena /opt/evoarena
ENV PATH="/opt/evoarena/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    EVOARENA_STATE__DIR=/state
USER evoarena
WORKDIR /state
VOLUME ["/state", "/recordings"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["evoarena"]
CMD ["run", "--config", "/config/prod.toml"]
