#!/bin/sh
# A throwaway PostgreSQL cluster for the test suite, on loopback only.
#
#   scripts/postgres.sh start [DIR]   start it (installing Debian's postgresql if missing,
#                                     as root) and print the URL for CLEANROOM_TEST_POSTGRES_URL
#   scripts/postgres.sh url [DIR]     print the URL of the running cluster
#   scripts/postgres.sh stop [DIR]    stop it (the folder stays; delete it to start afresh)
#
# Idempotent: "start" on a running cluster only prints the URL. Only the URL goes to
# standard output, so:  export CLEANROOM_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
# DIR defaults to $CLEANROOM_PG_DIR or /tmp/cleanroom-postgres; the port to
# $CLEANROOM_PG_PORT or 55432. Authentication is "trust": it listens on 127.0.0.1 and a
# socket inside DIR only, and holds nothing but test data.
set -eu

cmd=${1:-start}
dir=${2:-${CLEANROOM_PG_DIR:-/tmp/cleanroom-postgres}}
port=${CLEANROOM_PG_PORT:-55432}
user=cleanroom

say() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bindir=$(find_bindir)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    if [ "$cmd" != start ]; then
        say "PostgreSQL is not installed"
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "PostgreSQL is not installed; as root run: apt-get install -y postgresql"
        exit 1
    fi
    say "installing Debian's postgresql"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
    bindir=$(find_bindir)
fi

# PostgreSQL refuses to run as root: as root, run it as the "postgres" system user.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url="postgresql://$user@127.0.0.1:$port/postgres"
data="$dir/data"

running() { [ -f "$data/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

case "$cmd" in
start)
    if running; then
        echo "$url"
        exit 0
    fi
    mkdir -p "$dir/socket"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
    chmod 700 "$dir"
    if [ ! -f "$data/PG_VERSION" ]; then
        say "creating a cluster in $data"
        as_owner "$bindir/initdb" -D "$data" -U "$user" --auth=trust -E UTF8 >&2
    fi
    as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/socket -c fsync=off -c max_connections=200" \
        start >&2 || { say "did not start; see $dir/server.log"; tail -n 20 "$dir/server.log" >&2; exit 1; }
    echo "$url"
    ;;
url)
    running || { say "not running (start it first)"; exit 1; }
    echo "$url"
    ;;
stop)
    if running; then
        as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
    else
        say "not running"
    fi
    ;;
*)
    say "usage: $0 start|url|stop [DIR]"
    exit 2
    ;;
esac
