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
# /healthz with what the image has (Python): 200 while the connector serves.
# With HTTP_PORT changed or 0, set it here too, or turn the check off.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HTTP_PORT', '8080'), timeout=4)"]
# Exec form: SIGTERM reaches the connector itself, which closes stations and exits 0.
CMD ["python", "source/connector/main.py"]
