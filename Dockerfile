# The tramontane image: the `tramontane` command line. The gateway is a subcommand of the
# same binary, so this one image is the gateway's too.
#
#   docker build --tag tramontane .
#   docker run --rm --user "$(id -u)" --volume "$PWD:/work" tramontane validate
#
# (--user: the policy repository is read with libgit2, which refuses a repository owned by
# another user.) The builder runs on the build machine's platform and cross-compiles for the
# target's, so `docker buildx build --platform linux/amd64,linux/arm64` emulates nothing.
# The runtime is distroless: glibc, CA certificates and the binary; no shell, no package
# manager, a non-root user.

ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS builder
ARG TARGETARCH
# zlib linked in: the runtime image has glibc and libgcc, not necessarily libz.so.1.
ENV LIBZ_SYS_STATIC=1
WORKDIR /src
# The Rust target of the image's platform, and a C cross compiler when it is not the build
# machine's (libgit2, zlib and aws-lc are C).
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch64 ;; \
      *) echo "tramontane images are built for linux/amd64 and linux/arm64, not $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    if [ "$(uname -m)" != "$arch" ]; then \
      apt-get update; \
      apt-get install --yes --no-install-recommends \
        "gcc-$(echo "$arch" | tr _ -)-linux-gnu" "libc6-dev-$TARGETARCH-cross"; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "$arch-unknown-linux-gnu"; \
    echo "$arch-unknown-linux-gnu" > /rust-target
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    target=$(cat /rust-target); \
    arch=${target%%-*}; \
    export "CARGO_TARGET_$(echo "$target" | tr a-z- A-Z_)_LINKER=$arch-linux-gnu-gcc" \
      "CC_$(echo "$target" | tr - _)=$arch-linux-gnu-gcc" \
      "AR_$(echo "$target" | tr - _)=$arch-linux-gnu-ar"; \
    cargo build --profile dist --locked -p tramontane-cli --target "$target"; \
    cp "target/$target/dist/tramontane" /tramontane

# glibc of Debian 12, as the builder's: the binary links against it.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /tramontane /usr/local/bin/tramontane
USER nonroot:nonroot
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/tramontane"]
