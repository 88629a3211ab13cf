FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN useradd --create-home --uid 10001 tracker
COPY pyproject.toml README.md ./
COPY tracker ./tracker
COPY reports ./reports
COPY migrations ./migrations
COPY alembic.ini ./
COPY js/dist ./js/dist
# The bytecode is compiled here, once: with PYTHONDONTWRITEBYTECODE nothing writes it later, and each
# command (the nightly `tracker reports build` among them) would otherwise compile every module anew.
RUN pip install --no-cache-dir -e . && python -m compileall -q tracker reports migrations \
    && mkdir -p /app/instance && chown tracker:tracker /app/instance

USER tracker
EXPOSE 8000
# Migrations first (idempotent), then the server.
CMD ["sh", "-c", "tracker db upgrade && exec tracker serve --bind 0.0.0.0:8000 --workers ${WORKERS:-2}"]
