# The highway-network MNIST classifier served over gRPC (highway.v1 + KServe V2)
# by ONNX Runtime, with Prometheus metrics. No TensorFlow: only the server, its
# protos and the model repository go in.
#
#   docker build -t highway-mnist .                        # CPU (default; as in CI)
#   docker build -t highway-mnist:gpu --build-arg DEVICE=gpu .
#   docker run --rm -p 8001:8001 -p 8002:8002 highway-mnist
#   docker run --rm --gpus all -p 8001:8001 -p 8002:8002 highway-mnist:gpu
#
# DEVICE=cpu installs the plain `onnxruntime` CPU wheel; DEVICE=gpu installs
# `onnxruntime-gpu[cuda,cudnn]`, a CUDA 13 build whose extras bring CUDA 13 and
# cuDNN 9 from pip (host needs an NVIDIA driver for CUDA 13, i.e. R580 or newer,
# and the NVIDIA Container Toolkit). Both take the ONNX Runtime version from
# pyproject.toml. Configuration: the server's HIGHWAY_* environment variables
# (see `highway-serve --help`); the model repository is /models (mount a volume
# there to serve other models).

# --------------------------------------------------------- requirements stage
# pyproject's base dependencies, with the ONNX Runtime wheel chosen by DEVICE
# (also written into this copy of pyproject.toml, so the installed metadata says
# what is really installed and `pip check` holds), and exact pins for every
# package (pyproject gives ranges). A stage of its own so that edits to
# pyproject.toml that leave the dependencies alone keep the install layer cached.
# To refresh the pins, run `pip install --dry-run --report` with these files.
FROM python:3.11-slim-bookworm AS requirements

# cpu | gpu
ARG DEVICE=cpu
WORKDIR /src
COPY pyproject.toml ./
RUN case "$DEVICE" in \
      cpu) ort='onnxruntime' ;; \
      gpu) ort='onnxruntime-gpu[cuda,cudnn]' ;; \
      *) echo "DEVICE must be cpu or gpu, not '$DEVICE'" >&2; exit 2 ;; \
    esac \
 && sed -E -i "s/\"onnxruntime(-gpu)?(\[[a-z,]*\])?([=<>~!])/\"${ort}\3/" pyproject.toml \
 && python -c "import tomllib; \
print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.txt \
 && grep -F -q "${ort}==" requirements.txt \
 && cat requirements.txt \
 && printf '%s\n' \
      numpy==2.4.6 protobuf==7.36.2 pillow==13.0.0 typing_extensions==4.16.0 \
      flatbuffers==25.12.19 packaging==26.4 setuptools==84.2.1 wheel==0.48.0 \
      cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 \
      nvidia-cuda-runtime==13.5.37 nvidia-cuda-nvrtc==13.5.37 nvidia-cublas==13.10.0.20 \
      nvidia-cufft==12.5.0.14 nvidia-curand==10.4.5.25 nvidia-nvjitlink==13.5.37 \
      nvidia-cudnn-cu13==9.28.1.4 \
      > constraints.txt

# ---------------------------------------------------------------- build stage
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A virtual environment, copied whole into the runtime stage: everything the
# server imports lives under /opt/venv, nothing else from this stage ships.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --quiet pip==26.3

WORKDIR /src
# Dependencies first: this layer is rebuilt only when the requirements change.
COPY --from=requirements /src/requirements.txt /src/constraints.txt ./
RUN /opt/venv/bin/pip install --quiet -c constraints.txt -r requirements.txt setuptools wheel

# Then the code: only the server and its protos (training/ and export/ stay out), and
# so only the commands whose code is here: highway-train and highway-export are
# dropped from this copy of pyproject.toml before the install.
COPY scripts/prune_console_scripts.py /tmp/
COPY --from=requirements /src/pyproject.toml ./
COPY README.md ./
COPY protos ./protos
COPY highway_core ./highway_core
COPY server ./server
RUN python /tmp/prune_console_scripts.py pyproject.toml \
 && /opt/venv/bin/pip install --quiet --no-deps --no-build-isolation . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall --quiet --yes setuptools wheel pip

# ------------------------------------------------------ model repository stage
# models/ from the build context if there is one. A stage of its own because
# COPY of a path that may not exist fails on some builders (buildah, Docker's
# classic builder); copying the whole (allow-listed) context never does.
FROM python:3.11-slim-bookworm AS models
COPY . /context/
RUN mkdir -p /context/models

# -------------------------------------------------------------- runtime stage
FROM python:3.11-slim-bookworm

ARG DEVICE=cpu
LABEL org.opencontainers.image.title="highway-mnist" \
      org.opencontainers.image.description="Highway-network MNIST classifier: gRPC (highway.v1, KServe V2) on ONNX Runtime, Prometheus metrics" \
      org.opencontainers.image.licenses="MIT" \
      highway.device="${DEVICE}"

# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can verify it; no home, no
# login shell, no lastlog entry (-l).
RUN groupadd --gid 10001 highway \
 && useradd --uid 10001 --gid highway --no-create-home -l --shell /usr/sbin/nologin highway

COPY --from=build /opt/venv /opt/venv
# The shipped model repository (root-owned, read-only for the server), or an
# empty /models where the checkout has none: mount a repository there then.
COPY --from=models /context/models /models

# The pip CUDA/cuDNN libraries (DEVICE=gpu) are not on the loader's path by
# themselves; in the CPU image these folders do not exist, which is harmless.
# NVIDIA_DRIVER_CAPABILITIES: `compute` makes the NVIDIA runtime mount libcuda
# (some toolkit versions default to `utility` only). ORT_DISABLE_TELEMETRY: a
# server image sends no usage telemetry, and ORT then stops trying to write a
# device ID under $HOME (which this user does not have).
ENV PATH=/opt/venv/bin:$PATH \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    ORT_DISABLE_TELEMETRY=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HIGHWAY_MODEL_REPOSITORY=/models \
    HIGHWAY_HOST=0.0.0.0 \
    HIGHWAY_GRPC_PORT=8001 \
    HIGHWAY_METRICS_PORT=8002 \
    HIGHWAY_DEVICE=auto \
    HIGHWAY_WORKERS=1

USER 10001:10001
WORKDIR /tmp
EXPOSE 8001 8002
# HIGHWAY_WORKERS=N runs N server processes behind port 8001 (SO_REUSEPORT) under
# one supervisor (PID 1 here), which serves the merged /metrics; their metric
# files live in /dev/shm, so a read-only root filesystem is fine.
# The server drains on SIGTERM: accepted requests finish (HIGHWAY_GRACE_PERIOD_S),
# health turns NOT_SERVING, then it exits 0. Give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
# grpc.health.v1 Check of the whole server on $HIGHWAY_GRPC_PORT; exit 0 iff SERVING.
# With HIGHWAY_TLS_CERT set it speaks TLS (CA, client certificate and name from
# HIGHWAY_PROBE_TLS_*) and sends the header of a restricted `health` category.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-m", "server.healthcheck", "--timeout", "3"]

ENTRYPOINT ["highway-serve"]
