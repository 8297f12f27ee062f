# The training image: the seqzoo package and its pinned dependencies (CPU TensorFlow).
# docker-compose.yml's `train` and `worker*` services run `seqzoo ...` in it, with runs/ and
# models/ mounted from the host.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /opt/seqzoo
# Dependencies first, so editing the code does not reinstall TensorFlow.
COPY pyproject.toml README.md ./
COPY zoo ./zoo
COPY training ./training
COPY serving ./serving
RUN pip install .

WORKDIR /work
CMD ["seqzoo", "--help"]
