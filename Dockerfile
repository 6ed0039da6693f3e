# romed container image: CPU (default) or CUDA.
#
#   docker build -t romed .                              # CPU, Debian 12
#   docker build -t romed:cuda --build-arg VARIANT=cuda . # GPU, CUDA 12.6 + libtorch 2.6.0+cu126
#   docker run -p 50051:50051 -p 9090:9090 -v "$PWD/models:/models:ro" romed
#
# The build stage runs scripts/setup.sh and scripts/build.sh, the README's own
# steps. docker/assemble-runtime.sh then gathers docker/runtime-files.txt and
# every shared library those programs need into /rootfs; the runtime stage is
# a bare base image plus /rootfs (tests/deploy/runtime_smoke_test.sh starts
# romed from the same file set, without Docker). Flags come from ROMED_*
# variables (docker/entrypoint.sh; deploy/README.md lists them with defaults).
#
# GPU variant: CUDA 12.6.3 images on Ubuntu 24.04, whose gRPC 1.51, protobuf
# 3.21 and abseil 20220623 are the versions Debian 12 ships, and the
# cxx11-ABI libtorch zip: Ubuntu's gRPC and protobuf use the C++11 std::string
# ABI, so a pre-cxx11 libtorch (built with _GLIBCXX_USE_CXX11_ABI=0) would not
# link with them. Debian's CPU libtorch 1.13 is cxx11-ABI already.
ARG VARIANT=cpu

# ---- build stages ----------------------------------------------------------
FROM debian:12 AS build-cpu

FROM nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04 AS build-cuda
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/cu126/libtorch-cxx11-abi-shared-with-deps-2.6.0%2Bcu126.zip
# Optional: the zip's SHA-256, checked when set.
ARG LIBTORCH_SHA256=
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      ca-certificates curl unzip \
 && curl -fsSL -o /tmp/libtorch.zip "${LIBTORCH_URL}" \
 && if [ -n "${LIBTORCH_SHA256}" ]; then echo "${LIBTORCH_SHA256}  /tmp/libtorch.zip" | sha256sum -c -; fi \
 && unzip -q /tmp/libtorch.zip -d /opt \
 && rm -f /tmp/libtorch.zip \
 && rm -rf /var/lib/apt/lists/*
# setup.sh leaves out Debian's CPU libtorch; CMake finds /opt/libtorch instead;
# assemble-runtime.sh bundles all of its lib/ (some of it is only dlopen'd).
ENV ROMED_SETUP_SKIP_PACKAGES=libtorch-dev \
    CMAKE_PREFIX_PATH=/opt/libtorch \
    ROMED_BUNDLE_LIB_DIRS=/opt/libtorch/lib

# hadolint and dockerfilelint read the next line as an image without a tag:
# build-cpu / build-cuda are the stages above.
FROM build-${VARIANT} AS build
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh \
 && bash scripts/build.sh -DROMED_BUILD_TESTS=OFF -DROMED_BUILD_BENCH=OFF \
 && bash docker/assemble-runtime.sh /rootfs

# ---- runtime stages --------------------------------------------------------
FROM debian:12-slim AS runtime-cpu
ENV ROMED_DEVICE=cpu

FROM nvidia/cuda:12.6.3-base-ubuntu24.04 AS runtime-cuda
# The NVIDIA container runtime mounts the driver (libcuda.so.1) into the
# container; libtorch's zip brings its own CUDA runtime, cuBLAS and cuDNN.
ENV ROMED_DEVICE=cuda \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime-${VARIANT} AS runtime
COPY --from=build /rootfs/ /
RUN ldconfig \
 && groupadd --system --gid 10001 romed \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin romed \
 && mkdir -p /models /state \
 && chown 10001:10001 /state
# libgomp reads this when it loads; romed would otherwise re-execute itself
# to set it (server/core/openmp_wait.h).
ENV OMP_WAIT_POLICY=passive
USER 10001:10001
WORKDIR /state
VOLUME ["/models", "/state"]
# gRPC (with grpc.health.v1) and Prometheus /metrics: ROMED_PORT, ROMED_METRICS_PORT.
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/romed-entrypoint"]
