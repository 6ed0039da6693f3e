# romed container image (CPU). Issue 7 (deployment) extends this with a GPU
# variant, a slim runtime stage and Kubernetes manifests.
#   docker build -t romed .
#   docker run -p 50051:50051 -p 9090:9090 -v $PWD/models:/models romed --model=/models/fact
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh && bash scripts/build.sh

FROM debian:12 AS runtime
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libtorch1.13 libopenblas0-openmp libgrpc++1.51 libprotobuf32 libprometheus-cpp-pull1.0 \
      libpcre2-8-0 libsqlite3-0 libssl3 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/server/romed /src/build/client/romectl /usr/local/bin/
COPY docker/entrypoint.sh /usr/local/bin/romed-entrypoint
RUN useradd --system --uid 10001 romed && mkdir -p /models /state && chown romed /state
USER 10001
VOLUME ["/models", "/state"]
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/romed-entrypoint"]
