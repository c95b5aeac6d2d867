# syntax=docker/dockerfile:1
# imgpipe worker image: `docker build -t imgpipe .`; `docker run imgpipe worker` (default),
# `imgpipe archive`, or any other imgpipe command. The worker listens on every interface
# of the container, so it refuses to start without IMGPIPE_API_TOKEN or
# IMGPIPE_API_TOKENS_FILE (docs/api.md#tenants); no token is built in.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY agents ./agents
COPY tables ./tables
RUN pip install --no-cache-dir --upgrade pip==26.3 \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    IMGPIPE_WEB_BIND=0.0.0.0 \
    IMGPIPE_DATA_DIR=/var/lib/imgpipe/worker
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels imgpipe \
 && rm -rf /wheels \
 && useradd --system --uid 10001 --home-dir /var/lib/imgpipe --create-home imgpipe
USER 10001
WORKDIR /var/lib/imgpipe
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('IMGPIPE_WEB_PORT', '6066') + '/healthz', timeout=2)"]
ENTRYPOINT ["imgpipe"]
CMD ["worker"]
