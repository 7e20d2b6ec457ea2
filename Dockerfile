# The same code and the same `eldercare` commands as on a laptop, in production form.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY dispatch ./dispatch
COPY services ./services
COPY hotline ./hotline
COPY workers ./workers
COPY migrations ./migrations
RUN pip install -e . && useradd --system --home /app eldercare && mkdir -p /app/var && chown eldercare /app/var
USER eldercare
EXPOSE 8000
CMD ["eldercare", "serve", "--no-migrate"]
