# syntax=docker/dockerfile:1
# Latchkey's container image: the `dist` build (see Cargo.toml) on Debian
# bookworm, run as a non-root user on bookworm-slim.
#   docker build -t latchkey .
#   docker run --rm -p 8000:8000 -v latchkey-data:/data latchkey
# compose.yaml runs two of these behind nginx, with PostgreSQL and Redis.

FROM rust:1-bookworm AS builder
WORKDIR /src
# Only what `cargo build` reads: the workspace manifests, the lock
# file, the library and binary (src/) and the migration crate. No build.rs,
# no [[bench]] or [[example]] entries, and no include_str! of files outside src/.
COPY Cargo.toml Cargo.lock ./
COPY migration ./migration
COPY src ./src
# Cache mounts keep the registry and target/ between builds; the binary is
# copied out of target/ because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked --bin latchkey \
 && cp target/dist/latchkey /usr/local/bin/latchkey

FROM debian:bookworm-slim
# ca-certificates: SMTP over TLS and TLS to databases. libcrypt1: bcrypt goes
# through libxcrypt's crypt_rn (the binary links libcrypt.so.1).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libcrypt1 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin latchkey \
 && install -d -o latchkey -g latchkey -m 0750 /data
COPY --from=builder /usr/local/bin/latchkey /usr/local/bin/latchkey
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/latchkey-healthcheck

# SQLite (the default database) lives on the /data volume; set DATABASE_URL to
# postgres://… or mysql://… to use a server instead.
ENV BIND_ADDR=0.0.0.0:8000 \
    DATABASE_URL=sqlite:///data/latchkey.db?mode=rwc
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/latchkey-healthcheck"]
# The binary is PID 1: SIGTERM (docker stop) drains in-flight requests and exits 0.
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
