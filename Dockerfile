# The Curbstop server image (API + workers). Built from the locked dependencies.

# The office pages' browser libraries (htmx, Leaflet, Chart.js), from package-lock.json; the server serves
# them itself (no CDN). Scripts are skipped: only these plain files are taken, not pouchdb-server.
FROM node:20-slim AS web-vendor
WORKDIR /vendor
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
# Dependencies first, for layer caching; the server image skips the dev and bench groups.
RUN uv sync --frozen --no-install-project --no-default-groups
COPY contracts ./contracts
COPY server ./server
COPY routing ./routing
COPY mobile ./mobile
COPY device_bridge ./device_bridge
COPY curbstop_cli ./curbstop_cli
COPY alembic.ini ./
COPY --from=web-vendor /vendor/node_modules/htmx.org/dist ./node_modules/htmx.org/dist
COPY --from=web-vendor /vendor/node_modules/leaflet/dist ./node_modules/leaflet/dist
COPY --from=web-vendor /vendor/node_modules/chart.js/dist ./node_modules/chart.js/dist
RUN uv sync --frozen --no-default-groups
# Compile the routing search into numba's cache at build time (the runtime user cannot write /app).
RUN .venv/bin/python -c "from routing.ruin_recreate import warm_up; warm_up()"
RUN useradd --create-home curbstop && mkdir -p /app/var && chown curbstop /app/var
USER curbstop
ENV CURBSTOP_HOST=0.0.0.0 CURBSTOP_PORT=8000 PATH="/app/.venv/bin:$PATH"
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status == 200 else 1)"
# `serve` runs the Alembic migrations before it listens.
CMD ["curbstop", "serve"]
