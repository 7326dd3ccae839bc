# syntax=docker/dockerfile:1
# ML Service image: `docker compose up --build` (see README, "Scaling out").
#   target runtime (default): `mlservice serve | worker | migrate`, dashboard included
#   target gpu: runtime plus PyTorch (CUDA wheels) for a GPU training worker

# 1. The dashboard: a static export of the Next.js app.
FROM node:20-slim AS dashboard
WORKDIR /frontend
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 NEXT_TELEMETRY_DISABLED=1
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# 2. The Python runtime: no compilers, no Node; serves the dashboard from ML_DASHBOARD_DIR.
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ML_SERVICE_HOST=0.0.0.0 \
    ML_DATA_DIR=/data \
    ML_ARTIFACTS_ROOT=/artifacts \
    ML_DASHBOARD_DIR=/app/dashboard
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[distributed]" \
    && useradd --create-home --uid 10001 mlservice \
    && mkdir -p /data /artifacts \
    && chown mlservice:mlservice /data /artifacts
COPY --from=dashboard /frontend/out /app/dashboard
USER mlservice
# /artifacts is the shared volume: every API replica and worker mounts the same one.
VOLUME ["/data", "/artifacts"]
EXPOSE 8085
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8085/health', timeout=4)" || exit 1
CMD ["mlservice", "serve"]

# 3. A GPU training worker (docker compose --profile gpu up): PyTorch with CUDA.
FROM runtime AS gpu
USER root
RUN pip install ".[distributed,gpu]"
USER mlservice
HEALTHCHECK NONE
CMD ["mlservice", "worker", "--queues", "train", "--name", "gpu@%h"]
