# The training image: the seqzoo package and its pinned dependencies (CPU TensorFlow).
# docker-compose.yml's `train` and `worker*` services run `seqzoo ...` in it as the host user,
# with runs/ and models/ mounted from the host.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    # Any user may run the image (compose passes the host's uid), so caches go to a writable HOME.
    HOME=/tmp

WORKDIR /opt/seqzoo
# Dependencies first, in a layer of their own: it is rebuilt only when pyproject.toml changes, so
# editing the code does not reinstall TensorFlow.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY README.md ./
COPY zoo ./zoo
COPY training ./training
COPY serving ./serving
RUN pip install --no-deps .

USER 1000:1000
WORKDIR /work
CMD ["seqzoo", "--help"]
