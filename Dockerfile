# Multi-stage build: compile with the Rust toolchain, run on a small Debian image as a
# non-root user. The build command is the README's, with the `cluster` feature, so the
# one image runs locally, as a cluster's scheduler or executor, or as a run on a cluster
# (deploy/cluster/).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
RUN cargo build --release --locked --features cluster

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 fidelis
COPY --from=build /src/target/release/fidelis /usr/local/bin/fidelis
# Pipelines, SQL, templates and the bundled sample, so `run pipelines/loyalty.yaml` works as is.
WORKDIR /app
COPY pipelines ./pipelines
COPY sql ./sql
COPY templates ./templates
COPY data ./data
RUN chown -R fidelis:fidelis /app
USER fidelis
ENTRYPOINT ["fidelis"]
CMD ["--help"]
