# The BrokerX image: one image for web (ASGI), Celery workers and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=brokerx.settings.prod
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=collectstatic-only-build-step-key-not-used-at-runtime-0123456789 \
    DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput
# prometheus_client multiprocess mode: each process of a container writes its metrics to files here, emptied by
# the entry point at every container start (set after collectstatic, so the build writes none).
RUN useradd --system --uid 10001 brokerx && install -d -o brokerx -g brokerx -m 0700 /tmp/prometheus
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
USER brokerx
EXPOSE 8000
ENTRYPOINT ["/bin/sh", "/app/deploy/docker-entrypoint.sh"]
CMD ["gunicorn", "brokerx.asgi:application", "-c", "deploy/gunicorn.conf.py", "-k", "uvicorn.workers.UvicornWorker", "-w", "3", "-b", "0.0.0.0:8000"]
