# One image for the API, the workers and Flower. Built on CUDA so llama.cpp offloads to the GPU;
# the API and Flower simply never touch it. The web page's libraries come from npm in a stage of their own.
FROM node:20-slim AS web
WORKDIR /web
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM nvidia/cuda:12.4.1-devel-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
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
COPY --from=web /web/node_modules node_modules
RUN pip install -e '.[cuda]'

EXPOSE 8000 5555
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
