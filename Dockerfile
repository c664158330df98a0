FROM python:3.11-slim

WORKDIR /app
COPY source/requirements.txt source/requirements.txt
RUN pip install --no-cache-dir -r source/requirements.txt

COPY pyproject.toml .env ./
COPY source/ source/

# As BEMCom's images do, the build runs the tests that need no broker
# (the integration tests run in CI, against a real Mosquitto). Then a
# non-root user for running.
RUN python -m pytest -q -m "not broker" -p no:cacheprovider \
    && find source -name __pycache__ -prune -exec rm -rf {} + \
    && useradd --system --uid 10001 --no-create-home connector

USER 10001

EXPOSE 9000 8080
# /healthz with what the image has (Python): 200 while the connector serves. It reads
# HTTP_PORT and HTTP_HOST from the container's environment (HTTP_PORT=0: no check).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "source/connector/healthcheck.py"]
# Exec form: SIGTERM reaches the connector itself, which closes stations and exits 0.
CMD ["python", "source/connector/main.py"]
