#!/usr/bin/env bash
# Installs and starts what the clean room needs, then runs one of: venv, engine, up, down,
# test. Called by the Makefile; safe to run again (everything is checked first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CLEANROOM_ROOT="$ROOT"
STATE="${CLEANROOM_STATE_DIR:-$ROOT/state}"
# make up serves https with a generated demo certificate (cleanroom.identity.tls).
PUBLIC_URL="${CLEANROOM_PUBLIC_URL:-https://127.0.0.1:8000}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '==> %s\n' "$*"; }
die() { printf 'cleanroom setup: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
is_debian() { [ -r /etc/debian_version ] && command -v apt-get >/dev/null; }

APT_UPDATED=0
# Install Debian packages, or explain what is missing when we cannot.
need_packages() {
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_root || ! is_debian; then
    die "missing: ${missing[*]}. Install them (on Debian: sudo apt-get install -y ${missing[*]}) or run this as root on Debian, where it installs them itself."
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_base_packages() {
  local want=()
  command -v python3 >/dev/null || want+=(python3)
  python3 -c 'import venv, ensurepip' 2>/dev/null || want+=(python3-venv)
  command -v docker >/dev/null || want+=(docker.io)
  command -v dockerd >/dev/null || want+=(docker.io)
  command -v iptables >/dev/null || want+=(iptables)
  command -v debootstrap >/dev/null || want+=(debootstrap)
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
  command -v git >/dev/null || want+=(git)
  command -v curl >/dev/null || want+=(curl)
  command -v ip >/dev/null || want+=(iproute2)
  # shellcheck disable=SC2207
  want=($(printf '%s\n' "${want[@]}" | sort -u))
  need_packages "${want[@]}"
}

ensure_test_packages() {
  local want=()
  command -v chromium >/dev/null || want+=(chromium)
  command -v chromedriver >/dev/null || want+=(chromium-driver)
  [ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
  need_packages "${want[@]}"
}

ensure_proxy() {
  command -v configurable-http-proxy >/dev/null && return 0
  is_root || die "configurable-http-proxy is missing: install it with 'npm install -g configurable-http-proxy' (as root), or run this as root."
  say "installing configurable-http-proxy (npm)"
  npm install -g --no-fund --no-audit configurable-http-proxy >/dev/null
}

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

ensure_engine() {
  engine_answers && return 0
  if ! is_root || ! is_debian; then
    die "no Docker engine answers. Start one (e.g. 'sudo systemctl start docker', after 'sudo apt-get install docker.io'), or run this as root on Debian, where it starts one itself."
  fi
  command -v dockerd >/dev/null || need_packages docker.io
  mkdir -p "$STATE"
  say "starting the Docker engine (log: $STATE/dockerd.log)"
  # A new session, so the engine outlives this script (and make's process group).
  setsid dockerd >"$STATE/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    engine_answers && { say "Docker engine is up"; return 0; }
    sleep 1
  done
  tail -n 20 "$STATE/dockerd.log" >&2 || true
  die "the Docker engine did not start within 60 s (see $STATE/dockerd.log)"
}

ensure_venv() {
  local stamp="$VENV/.cleanroom-installed"
  local want
  want="$(cat pyproject.toml extensions/pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if [ ! -x "$PY" ]; then
    say "creating the virtual environment $VENV"
    python3 -m venv "$VENV"
  fi
  say "installing cleanroom and its dependencies into $VENV"
  "$PY" -m pip install -q --upgrade pip
  local extra=()
  [ -f extensions/pyproject.toml ] && extra=(-e ./extensions)
  "$PY" -m pip install -q -e '.[dev]' "${extra[@]}"
  echo "$want" >"$stamp"
}

hub_pid() {
  local pidfile="$STATE/jupyterhub.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"
}

cmd_up() {
  ensure_base_packages
  ensure_engine
  ensure_proxy
  ensure_venv
  export PATH="$VENV/bin:$PATH"
  say "building workspace images (skipped when unchanged)"
  cleanroom images build
  say "seeding the demo (kept when present)"
  cleanroom demo >/dev/null
  # Indexes built by an older release of the checks are rebuilt from the library copy.
  cleanroom datasets reindex --stale >/dev/null
  if pid="$(hub_pid)"; then
    say "the hub is already running (pid $pid)"
  else
    mkdir -p "$STATE"
    say "starting JupyterHub (log: $STATE/hub.log)"
    # exec: no shell may linger holding this script's output open.
    (cd "$STATE" && exec setsid "$VENV/bin/jupyterhub" -f "$ROOT/hub/jupyterhub_config.py") \
      >>"$STATE/hub.log" 2>&1 < /dev/null &
    # The hub generates the demo certificate (state/secrets/demo-tls.crt) at its first
    # start; curl trusts exactly that certificate once it exists.
    hub_answers() {
      local ca="${CLEANROOM_TLS_CERT:-$STATE/secrets/demo-tls.crt}"
      case "$PUBLIC_URL" in
        https:*) [ -f "$ca" ] && curl -fsS -o /dev/null --cacert "$ca" "$PUBLIC_URL/hub/api" ;;
        *) curl -fsS -o /dev/null "$PUBLIC_URL/hub/api" ;;
      esac
    }
    for _ in $(seq 1 90); do
      hub_answers 2>/dev/null && break
      sleep 1
    done
    hub_answers \
      || { tail -n 30 "$STATE/hub.log" >&2; die "the hub did not answer on $PUBLIC_URL (see $STATE/hub.log)"; }
  fi
  echo
  echo "The clean room runs on $PUBLIC_URL"
  echo "  (a self-signed demo certificate: $STATE/secrets/demo-tls.crt; your browser asks once)"
  cleanroom demo | sed 's/^/  /'
  echo
  echo "Log in as alice (a researcher) and start the press-quality project. At the first"
  echo "log-in each person enrols a second factor: scan the QR code with an authenticator app."
  echo "Stop everything with 'make down' (state stays in $STATE)."
}

cmd_down() {
  if pid="$(hub_pid)"; then
    say "stopping JupyterHub (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  else
    say "the hub is not running"
  fi
  if engine_answers; then
    local ids
    # Only this deployment's workspaces: others (another checkout's tests, another
    # instance) share the engine.
    ids="$(docker ps -q --filter label=cleanroom.kind=workspace \
      --filter "label=cleanroom.instance=${CLEANROOM_INSTANCE:-main}")"
    if [ -n "$ids" ]; then
      say "stopping workspaces of instance ${CLEANROOM_INSTANCE:-main} (their work folders stay on disk)"
      # shellcheck disable=SC2086
      docker stop -t 10 $ids >/dev/null
    fi
  fi
  if [ -x "$VENV/bin/cleanroom" ] && is_root; then
    "$VENV/bin/cleanroom" firewall remove >/dev/null && say "host firewall rules removed"
  fi
  say "stopped; state kept in $STATE"
}

cmd_test() {
  ensure_base_packages
  ensure_test_packages
  ensure_engine
  ensure_proxy
  ensure_venv
  export PATH="$VENV/bin:$PATH"
  if [ -x scripts/postgres.sh ]; then
    CLEANROOM_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
    export CLEANROOM_TEST_POSTGRES_URL
  fi
  # Under CI the Kubernetes tests (marker k8s) must run: build the test cluster's
  # binaries first (cached in build/k8s); the tests start and stop the cluster.
  case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
    1 | true | yes | on) scripts/k8s.sh build ;;
  esac
  set +e
  "$VENV/bin/python" -m pytest -ra -p no:cacheprovider "$@"
  local rc=$?
  set -e
  [ -x scripts/postgres.sh ] && scripts/postgres.sh stop >/dev/null 2>&1 || true
  return $rc
}

case "${1:-}" in
  venv) ensure_venv ;;
  engine) ensure_engine ;;
  up) cmd_up ;;
  down) cmd_down ;;
  test) shift; cmd_test "$@" ;;
  *) die "usage: scripts/setup.sh venv|engine|up|down|test [pytest args]" ;;
esac
