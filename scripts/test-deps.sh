#!/usr/bin/env bash
# test-deps.sh installs what the test suite needs and does nothing when all of it
# is present: Debian's PostgreSQL, Redis, Chromium (browser tests), nginx and
# HAProxy (bench smoke), and a Consul agent built from the Go module proxy.
#
# Consul: Debian has no package, and releases after 1.14 are BSL-licensed, so we
# build 1.14.11 (MPL-2.0) from source. The binary is cached outside the repo
# (OMNIBRIDGE_CACHE, default ~/.cache/omnibridge) so only a fresh machine pays
# for the build (about 10 minutes on 2 cores).
set -euo pipefail

cache="${OMNIBRIDGE_CACHE:-$HOME/.cache/omnibridge}"
mkdir -p "$cache/bin"

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || need_apt+=(iptables)
command -v ip >/dev/null || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-deps: installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

consul_bin="$cache/bin/consul"
if [ ! -x "$consul_bin" ]; then
  echo "test-deps: building Consul 1.14.11 (MPL-2.0) into $consul_bin; this takes about 10 minutes once"
  src=$(go mod download -json github.com/hashicorp/consul@v1.14.11 | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  work=$(mktemp -d)
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  (
    cd "$work"
    go mod edit -dropreplace=github.com/hashicorp/consul/api \
      -dropreplace=github.com/hashicorp/consul/sdk \
      -dropreplace=github.com/hashicorp/consul/proto-public
    if ! GOFLAGS=-mod=mod go build -o "$consul_bin.tmp" . >"$work.log" 2>&1; then
      tail -30 "$work.log" >&2
      echo "test-deps: the Consul build failed (log above)" >&2
      exit 1
    fi
  )
  mv "$consul_bin.tmp" "$consul_bin"
  rm -rf "$work" "$work.log"
fi
echo "test-deps: ready (consul at $consul_bin)"
