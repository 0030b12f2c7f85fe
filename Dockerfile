# The Curbstop server image (API + workers). Built from the locked dependencies.
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
COPY alembic.ini ./
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
