# Rigger's container image: `docker build -t registry.example.com/platform/rigger:0.1.0 .`
# Not built in this repository's CI (its machines reach no container registry); the Helm chart
# and docs/install-helm.md expect an image like this one.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# `--build-arg RIGGER_COMMIT=$(git rev-parse --short=12 HEAD)` names the commit in rigger_build_info.
ARG RIGGER_COMMIT=""
RUN cargo build --release --locked --bin rigger

FROM debian:bookworm-slim
# CA roots for HTTPS git, GitHub and the API server; ssh for ssh:// git remotes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/rigger /usr/local/bin/rigger
# The chart runs as this non-root user with a read-only root filesystem; state and cache live
# on volumes under /var/lib/rigger.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rigger"]
CMD ["run", "--config", "/etc/rigger/rigger.yaml"]
