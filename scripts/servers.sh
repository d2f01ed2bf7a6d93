#!/usr/bin/env bash
# Starts, stops and reports the Redis and PostgreSQL servers that the Redis/PostgreSQL
# benchmarks (and the backend tests, once those backends exist) run against: real
# servers from Debian's packages (scripts/install-deps.sh), on loopback only, on ports
# of their own so they never meet a system server, with their data under one directory.
#
#   scripts/servers.sh start|stop|status [redis|cluster|postgres|all]     (default: all)
#
# Environment (defaults in brackets):
#   KVDEX_SERVERS_DIR   data, logs, pid files              [build/servers]
#   KVDEX_REDIS_PORT    Redis port on 127.0.0.1            [16379]
#   KVDEX_PG_PORT       PostgreSQL port on 127.0.0.1       [15432]
#   KVDEX_REDIS_CLUSTER_PORT      first Redis Cluster node's port  [17000]
#   KVDEX_REDIS_CLUSTER_MASTERS   cluster masters (>= 3)           [3]
#   KVDEX_REDIS_CLUSTER_REPLICAS  replicas per master              [0]
#   KVDEX_PG_DATABASE   database created for kvdex         [kvdex]
#   KVDEX_PG_BINDIR     PostgreSQL server binaries         [newest /usr/lib/postgresql/*/bin]
# Connect with redis://127.0.0.1:16379/0, redis://127.0.0.1:17000?cluster=1 (the cluster:
# nodes on ports 17000.., their cluster bus on 27000..) and
# postgresql://postgres@127.0.0.1:15432/kvdex. `all` is redis and postgres; the cluster
# (6 processes with replicas) only starts when asked for by name.
#
# `start` is idempotent (a server already running from this directory is left alone)
# and returns once each server accepts connections; `status` exits 0 only if every
# requested server is running. Exit status 2: a server's binaries are not installed.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${KVDEX_SERVERS_DIR:-build/servers}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
redis_port=${KVDEX_REDIS_PORT:-16379}
pg_port=${KVDEX_PG_PORT:-15432}
pg_database=${KVDEX_PG_DATABASE:-kvdex}
pg_user=postgres

say() { echo "servers.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}
missing() {
  say "$*; install it with scripts/install-deps.sh"
  exit 2
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- Redis
redis_dir=$dir/redis
redis_pidfile=$redis_dir/redis.pid
redis_log=$redis_dir/redis.log

redis_pid() {
  [[ -f $redis_pidfile ]] || return 1
  local pid
  pid=$(<"$redis_pidfile")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

redis_ping() { [[ $(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) == PONG ]]; }

redis_start() {
  command -v redis-server >/dev/null || missing "redis-server not found"
  command -v redis-cli >/dev/null || missing "redis-cli not found (Debian package redis-tools)"
  if redis_pid >/dev/null && redis_ping; then
    say "redis already running on 127.0.0.1:$redis_port (pid $(redis_pid))"
    return 0
  fi
  if port_open "$redis_port"; then
    die "redis: port 127.0.0.1:$redis_port is taken by another process; choose another with KVDEX_REDIS_PORT"
  fi
  mkdir -p "$redis_dir"
  rm -f "$redis_pidfile"
  # A cache for benchmarks and tests: no RDB snapshots, no AOF, nothing left on disk.
  # maxclients is raised so that a client opening a connection per pending call (as
  # some redis-py versions' asyncio pools do) for the benchmark's 10,000 gathered gets
  # is not refused.
  if ! redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$redis_dir" --daemonize yes --pidfile "$redis_pidfile" --logfile "$redis_log" \
    --maxclients 16000 >/dev/null; then
    die "redis on 127.0.0.1:$redis_port failed to start; log: $redis_log"
  fi
  for _ in $(seq 100); do
    if redis_ping; then
      say "redis running on 127.0.0.1:$redis_port (log: $redis_log)"
      return 0
    fi
    sleep 0.1
  done
  die "redis on 127.0.0.1:$redis_port does not answer PING after 10 s; log: $redis_log"
}

redis_stop() {
  local pid
  if ! pid=$(redis_pid); then
    say "redis not running (from $redis_dir)"
    rm -f "$redis_pidfile"
    return 0
  fi
  # SHUTDOWN NOSAVE: nothing is persisted by design; fall back to SIGTERM if the
  # server does not take commands (e.g. it is still loading).
  redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    die "redis (pid $pid, 127.0.0.1:$redis_port) did not stop within 10 s; log: $redis_log"
  fi
  rm -f "$redis_pidfile"
  say "redis on 127.0.0.1:$redis_port stopped"
}

redis_status() {
  local pid
  if pid=$(redis_pid) && redis_ping; then
    echo "redis: running on 127.0.0.1:$redis_port (pid $pid, log $redis_log)"
  else
    echo "redis: stopped (127.0.0.1:$redis_port)"
    return 3
  fi
}

# ---------------------------------------------------------------- Redis Cluster
cluster_dir=$dir/redis-cluster
cluster_first_port=${KVDEX_REDIS_CLUSTER_PORT:-17000}
cluster_masters=${KVDEX_REDIS_CLUSTER_MASTERS:-3}
cluster_replicas=${KVDEX_REDIS_CLUSTER_REPLICAS:-0}
cluster_ports=()
for ((i = 0; i < cluster_masters * (1 + cluster_replicas); i++)); do
  cluster_ports+=($((cluster_first_port + i)))
done

cluster_node_pid() {
  local pidfile=$cluster_dir/$1/redis.pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cluster_info() { redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r'; }

# True if every node runs, says cluster_state:ok and has all 16384 slots assigned.
cluster_ok() {
  local port
  for port in "${cluster_ports[@]}"; do
    cluster_node_pid "$port" >/dev/null || return 1
    cluster_info "$port" | grep -qx 'cluster_state:ok' || return 1
    cluster_info "$port" | grep -qx 'cluster_slots_assigned:16384' || return 1
  done
}

cluster_start() {
  command -v redis-server >/dev/null || missing "redis-server not found"
  command -v redis-cli >/dev/null || missing "redis-cli not found (Debian package redis-tools)"
  ((cluster_masters >= 3)) || die "redis-cluster: KVDEX_REDIS_CLUSTER_MASTERS must be >= 3"
  if cluster_ok; then
    say "redis-cluster already running on 127.0.0.1:${cluster_ports[0]}..${cluster_ports[-1]}"
    return 0
  fi
  # A cache like the single node: a half-started or stale cluster is thrown away and
  # created afresh, so `start` never inherits a broken slot map.
  cluster_stop >/dev/null 2>&1 || true
  rm -rf "$cluster_dir"
  local port
  for port in "${cluster_ports[@]}"; do
    if port_open "$port" || port_open $((port + 10000)); then
      die "redis-cluster: port 127.0.0.1:$port or its bus port $((port + 10000)) is taken; choose others with KVDEX_REDIS_CLUSTER_PORT"
    fi
  done
  for port in "${cluster_ports[@]}"; do
    mkdir -p "$cluster_dir/$port"
    if ! redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000 --save '' --appendonly no \
      --dir "$cluster_dir/$port" --daemonize yes --pidfile "$cluster_dir/$port/redis.pid" \
      --logfile "$cluster_dir/$port/redis.log" --maxclients 16000 >/dev/null; then
      die "redis-cluster node 127.0.0.1:$port failed to start; log: $cluster_dir/$port/redis.log"
    fi
  done
  for port in "${cluster_ports[@]}"; do
    for _ in $(seq 100); do
      [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && break
      sleep 0.1
    done
  done
  local nodes=()
  for port in "${cluster_ports[@]}"; do nodes+=("127.0.0.1:$port"); done
  if ! redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$cluster_replicas" --cluster-yes \
    >"$cluster_dir/create.log" 2>&1; then
    die "redis-cluster: redis-cli --cluster create failed; log: $cluster_dir/create.log"
  fi
  for _ in $(seq 300); do
    if cluster_ok; then
      say "redis-cluster running on 127.0.0.1:${cluster_ports[0]}..${cluster_ports[-1]} ($cluster_masters masters, $cluster_replicas replicas each; logs under $cluster_dir)"
      return 0
    fi
    sleep 0.1
  done
  die "redis-cluster not in cluster_state:ok after 30 s; logs under $cluster_dir"
}

cluster_stop() {
  local port pid stopped=0
  for port in "${cluster_ports[@]}"; do
    pid=$(cluster_node_pid "$port") || continue
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    rm -f "$cluster_dir/$port/redis.pid"
    stopped=$((stopped + 1))
  done
  say "redis-cluster: $stopped node(s) stopped (127.0.0.1:${cluster_ports[0]}..${cluster_ports[-1]})"
}

cluster_status() {
  if cluster_ok; then
    echo "redis-cluster: running on 127.0.0.1:${cluster_ports[0]}..${cluster_ports[-1]}, cluster_state:ok (connect with redis://127.0.0.1:${cluster_ports[0]}?cluster=1)"
  else
    echo "redis-cluster: stopped or not ok (127.0.0.1:${cluster_ports[0]}..${cluster_ports[-1]})"
    return 3
  fi
}

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() {
  if [[ -n ${KVDEX_PG_BINDIR:-} ]]; then
    echo "$KVDEX_PG_BINDIR"
    return
  fi
  local bindirs=(/usr/lib/postgresql/*/bin)
  if [[ -d ${bindirs[0]} ]]; then
    printf '%s\n' "${bindirs[@]}" | sort -V | tail -n 1
  else
    echo /usr/lib/postgresql/VERSION/bin  # not installed: named in the error message
  fi
}
pg_bin=$(pg_bindir)

# initdb and postgres refuse to run as root, so the cluster belongs to the `postgres`
# user Debian's package creates. That user must reach the data directory; if it cannot
# traverse $dir (e.g. a clone under a private home), the cluster goes under /tmp and
# $dir/postgres.path records where.
pg_path_file=$dir/postgres.path
as_pg() { (cd / && runuser -u "$pg_user" -- "$@"); }

pg_home() {
  if [[ -f $pg_path_file ]]; then
    cat "$pg_path_file"
  else
    echo "$dir/postgres"
  fi
}

pg_choose_home() {
  [[ -f $pg_path_file ]] && return 0
  local home=$dir/postgres
  mkdir -p "$home"
  chown "$pg_user:" "$home"
  if ! as_pg test -w "$home"; then
    home=${TMPDIR:-/tmp}/kvdex-servers-postgres-$pg_port
    say "postgres: user $pg_user cannot reach $dir; using $home"
    mkdir -p "$home"
    chown "$pg_user:" "$home"
    chmod 700 "$home"
  fi
  echo "$home" >"$pg_path_file"
}

pg_ctl_status() { [[ -f $(pg_home)/data/PG_VERSION ]] && as_pg "$pg_bin/pg_ctl" status -D "$(pg_home)/data" >/dev/null 2>&1; }
pg_ready() { "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -d "$pg_database" -U "$pg_user" >/dev/null 2>&1; }
pg_psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U "$pg_user" "$@"; }

pg_start() {
  [[ -x $pg_bin/postgres && -x $pg_bin/initdb ]] || missing "PostgreSQL server binaries not found in $pg_bin (Debian package postgresql)"
  id "$pg_user" >/dev/null 2>&1 || missing "system user $pg_user (created by Debian's postgresql package) does not exist"
  if pg_ctl_status && pg_ready; then
    say "postgres already running on 127.0.0.1:$pg_port (data $(pg_home)/data)"
    return 0
  fi
  if ! pg_ctl_status && port_open "$pg_port"; then
    die "postgres: port 127.0.0.1:$pg_port is taken by another process; choose another with KVDEX_PG_PORT"
  fi
  pg_choose_home
  local home data log
  home=$(pg_home)
  data=$home/data
  log=$home/postgres.log
  if [[ ! -f $data/PG_VERSION ]]; then
    # Loopback-only throwaway server: trust authentication, so clients need no
    # password; nothing listens beyond 127.0.0.1 and the socket directory is private.
    if ! as_pg "$pg_bin/initdb" -D "$data" -U "$pg_user" --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$home/initdb.log" 2>&1; then
      die "postgres: initdb of $data failed; log: $home/initdb.log"
    fi
  fi
  as_pg mkdir -p "$home/socket"
  if ! as_pg "$pg_bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$home/socket" \
    >/dev/null 2>&1; then
    die "postgres on 127.0.0.1:$pg_port failed to start; log: $log"
  fi
  if [[ -z $(pg_psql -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$pg_database'") ]]; then
    pg_psql -d postgres -c "CREATE DATABASE \"$pg_database\"" || die "postgres: cannot create database $pg_database; log: $log"
  fi
  pg_ready || die "postgres on 127.0.0.1:$pg_port does not accept connections; log: $log"
  say "postgres running on 127.0.0.1:$pg_port, database $pg_database (log: $log)"
}

pg_stop() {
  if ! pg_ctl_status; then
    say "postgres not running (from $(pg_home))"
    return 0
  fi
  # Fast shutdown: roll back open sessions, checkpoint, exit; the cluster stays
  # reusable for the next start.
  if ! as_pg "$pg_bin/pg_ctl" stop -D "$(pg_home)/data" -m fast -w -t 60 >/dev/null 2>&1; then
    die "postgres on 127.0.0.1:$pg_port did not stop within 60 s; log: $(pg_home)/postgres.log"
  fi
  say "postgres on 127.0.0.1:$pg_port stopped"
}

pg_status() {
  if [[ -x $pg_bin/pg_ctl ]] && pg_ctl_status && pg_ready; then
    echo "postgres: running on 127.0.0.1:$pg_port, database $pg_database (data $(pg_home)/data)"
  else
    echo "postgres: stopped (127.0.0.1:$pg_port)"
    return 3
  fi
}

# ---------------------------------------------------------------- main
action=${1:-}
which=${2:-all}
case $which in
  redis) servers=(redis) ;;
  cluster | redis-cluster) servers=(cluster) ;;
  postgres | postgresql) servers=(pg) ;;
  all) servers=(redis pg) ;;
  *) die "unknown server '$which' (redis, cluster, postgres or all)" ;;
esac
case $action in
  start | stop)
    for s in "${servers[@]}"; do "${s}_$action"; done
    ;;
  status)
    rc=0
    for s in "${servers[@]}"; do "${s}_status" || rc=3; done
    exit $rc
    ;;
  *)
    echo "usage: scripts/servers.sh start|stop|status [redis|cluster|postgres|all]" >&2
    exit 64
    ;;
esac
