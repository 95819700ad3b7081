# One image for the API, the workers and Flower. llama.cpp is compiled with CUDA in a `devel` stage;
# the image that runs is CUDA `runtime` (its libraries, no compilers) with the built virtualenv, as a
# non-root user. The API and Flower simply never touch the GPU. The web page's libraries come from npm
# in a stage of their own.
FROM node:20.18.1-slim AS web
WORKDIR /web
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml ./
# llama.cpp with CUDA; the cuda extra brings bitsandbytes for the 4-bit transformers model.
RUN CMAKE_ARGS="-DGGML_CUDA=on" pip install "llama-cpp-python==0.3.16"
COPY . .
RUN pip install -e '.[cuda]'

FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . .
COPY --from=web /web/node_modules node_modules
# The code stays root-owned (read-only to the app); only data/ (model cache, adapters) is writable.
RUN mkdir -p /app/data /home/app/.cache/huggingface && chown -R app:app /app/data /home/app/.cache
USER app

EXPOSE 8000 5555
# --no-proxy-headers: X-Forwarded-For is read by the app, from FORWARDED_ALLOW_IPS only.
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers"]
