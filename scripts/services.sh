#!/usr/bin/env bash
# scripts/services.sh — start/stop the local backing services for swapmeet.
#
# Usage: scripts/services.sh up [redis-cluster] | down [--wipe | redis-cluster] | clean | status | env | tools
#
#   up            install what is missing, start every service, wait until each
#                 one is ready (idempotent: already-running services are only
#                 probed, so a second `up` takes well under a second)
#   up redis-cluster  start only the optional 3-master Redis Cluster (not part of `up`)
#   down          stop ONLY the processes this script started (pid files /
#                 `pg_ctl -D <dir> stop`), keep data under .data/
#   down redis-cluster  stop only the Redis Cluster
#   down --wipe   same as down, then delete .data/ (alias: `clean`)
#   status        print up/down per service; exit 0 only if all of `up`'s are up
#   env           print `export NAME='value'` lines; use: eval "$(scripts/services.sh env)"
#   cluster up <name> <port> | standby|restore|copy <name> <port> <of> <its port> |
#           promote <name> | down <name> [--wipe]
#                 scratch Postgres clusters under .data/clusters: a primary like
#                 pg-write, a streaming standby of one, a base backup of one
#                 recovered as a new timeline, or one started as is (what the
#                 failover and restore tests run on)
#   tools         install what is missing of the reference tools `make bench` runs:
#                 h2load (nghttp2-client), redis-benchmark (redis-tools), pgbench
#                 and pg_recvlogical (postgresql-15)
#
# Services (fixed loopback ports; other code depends on them):
#   pg-write  PostgreSQL 15 write side (wal_level=logical)  127.0.0.1:15432  .data/pg-write
#   pg-read   PostgreSQL 15 backing FerretDB                127.0.0.1:15433  .data/pg-read
#   redis     Redis 7 (Debian redis-server, no persistence) 127.0.0.1:16379
#   ferretdb  FerretDB v1.24.0 (scripts/ferretdb)           127.0.0.1:27018  -> pg-read
#   minio     MinIO (pinned, built from the module proxy)   127.0.0.1:19000 (console :19001);
#             `up` then runs `swapmeet media setup` (bucket, the API's user)
#   redis-cluster  optional, only with `up redis-cluster`: a Redis Cluster of 3
#             masters, no replicas, no persistence   127.0.0.1:17001-17003  .data/redis-cluster
#
# Everything lives under <repo>/.data (git-ignored): data dirs, pid files in
# .data/run, Postgres unix sockets in .data/run/pgsock, logs in .data/log/<service>.log.
# Built binaries are cached in $(go env GOPATH)/bin so fresh clones reuse them.
#
# Environment knobs:
#   SWAPMEET_SERVICES_TIMEOUT  readiness deadline per service in seconds (default 60)
#   SWAPMEET_NO_CHMOD=1        when running as root and the postgres user cannot
#                              traverse to .data, fail instead of `chmod o+x` on parents
set -euo pipefail

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------
REPO_ROOT="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
DATA="$REPO_ROOT/.data"
LOG_DIR="$DATA/log"
RUN_DIR="$DATA/run"
PG_SOCK_DIR="$RUN_DIR/pgsock"
TIMEOUT="${SWAPMEET_SERVICES_TIMEOUT:-60}"

PG_MAJOR=15
PG_WRITE_DIR="$DATA/pg-write"
PG_WRITE_PORT=15432
PG_READ_DIR="$DATA/pg-read"
PG_READ_PORT=15433

REDIS_PORT=16379
REDIS_PID="$RUN_DIR/redis.pid"

REDIS_CLUSTER_PORTS=(17001 17002 17003)
REDIS_CLUSTER_DIR="$DATA/redis-cluster"
REDIS_CLUSTER_URL="redis://127.0.0.1:17001?addr=127.0.0.1:17002&addr=127.0.0.1:17003"

FERRETDB_ADDR="127.0.0.1:27018"
FERRETDB_PORT=27018
FERRETDB_PID="$RUN_DIR/ferretdb.pid"
FERRETDB_SRC="$REPO_ROOT/scripts/ferretdb"
FERRETDB_PG_URL="postgres://ferretdb:ferretdb@127.0.0.1:${PG_READ_PORT}/ferretdb?sslmode=disable"

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_MODULE="github.com/minio/minio"
MINIO_PORT=19000
MINIO_CONSOLE_PORT=19001
MINIO_DIR="$DATA/minio"
MINIO_PID="$RUN_DIR/minio.pid"
# MinIO's root, which only `swapmeet media setup` uses, and the API's own
# user, which that setup makes (media.DevAdmin and media.DefaultConfig).
MINIO_ROOT_USER="swapmeet-admin"
MINIO_ROOT_PASSWORD="swapmeet-admin-secret"
MINIO_API_USER="swapmeet"
MINIO_API_PASSWORD="swapmeet-secret"
MINIO_BUCKET="swapmeet-media"
MINIO_SETUP_STAMP="$DATA/minio-setup.sha256"

PG_WRITE_URL="postgres://swapmeet:swapmeet@127.0.0.1:${PG_WRITE_PORT}/swapmeet?sslmode=disable"
PG_OWNER_URL="postgres://swapmeet_owner:swapmeet_owner@127.0.0.1:${PG_WRITE_PORT}/swapmeet?sslmode=disable"
PG_READ_URL="postgres://ferretdb:ferretdb@127.0.0.1:${PG_READ_PORT}/ferretdb?sslmode=disable"
SEARCH_URL="postgres://ferretdb:ferretdb@127.0.0.1:${PG_READ_PORT}/swapmeet_search?sslmode=disable"

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
say() { echo "services: $*"; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

# fail_service <name> <log> <message>: loud failure pointing at the log file.
fail_service() {
	local name=$1 log=$2 msg=$3
	{
		echo "services: ERROR: $name: $msg"
		echo "services: ERROR: see log file $log"
		if [[ -s $log ]]; then
			echo "---- last 20 lines of $log ----"
			tail -n 20 "$log"
			echo "----"
		fi
	} >&2
	exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# port_open <port>: something accepts TCP connections on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cmdline_of <pid>: the process's command line (space separated), empty if gone.
cmdline_of() {
	if [[ -r /proc/$1/cmdline ]]; then
		tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
	else
		ps -o args= -p "$1" 2>/dev/null || true
	fi
}

# pid_alive_match <pid> <pattern>: pid is alive AND its command line contains
# <pattern>, so a stale pid file whose pid got reused is never mistaken for ours.
pid_alive_match() {
	local pid=$1 pattern=$2
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[[ $(cmdline_of "$pid") == *"$pattern"* ]]
}

# pid_gone <pid> <pattern>: the process has exited, or its pid now belongs to
# another program. An empty command line is not taken as gone: a process reads
# as empty for a moment while it execs, and a fresh spawn execs twice.
pid_gone() {
	local pid=$1 pattern=$2 cmd
	kill -0 "$pid" 2>/dev/null || return 0
	cmd=$(cmdline_of "$pid")
	[[ -n $cmd && $cmd != *"$pattern"* ]]
}

# pidfile_pid <file>: first line of the pid file (empty if missing).
pidfile_pid() {
	if [[ -r $1 ]]; then head -n 1 "$1" | tr -dc '0-9'; fi
	return 0
}

# wait_ready <name> <log> <addr> <pidfile-or-empty> <pattern> <probe...>:
# poll the probe until it succeeds or the deadline passes. If a pid file is
# given, fail as soon as that process dies, and on timeout stop it, so that the
# next `up` starts it afresh instead of waiting on a broken instance.
wait_ready() {
	local name=$1 log=$2 addr=$3 pidfile=$4 pattern=$5
	shift 5
	local deadline=$((SECONDS + TIMEOUT)) pid=""
	[[ -n $pidfile ]] && pid=$(pidfile_pid "$pidfile")
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if [[ -n $pid ]] && pid_gone "$pid" "$pattern"; then
			rm -f "$pidfile"
			fail_service "$name" "$log" "process (pid $pid) exited before becoming ready on $addr"
		fi
		if ((SECONDS >= deadline)); then
			[[ -n $pid ]] && stop_pid "$name" "$pidfile" "$pattern" >/dev/null
			fail_service "$name" "$log" "not ready on $addr within ${TIMEOUT}s${pid:+ (stopped pid $pid)}"
		fi
		sleep 0.2
	done
}

# stop_pid <name> <pidfile> <pattern>: SIGTERM the pid from our pid file (only if
# it is still the process we started), wait for it to exit, SIGKILL as last resort.
stop_pid() {
	local name=$1 pidfile=$2 pattern=$3 pid
	pid=$(pidfile_pid "$pidfile")
	if [[ -z $pid ]] || ! pid_alive_match "$pid" "$pattern"; then
		rm -f "$pidfile"
		say "$name already down"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "services: WARNING: $name (pid $pid) ignored SIGTERM for 30s, sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	rm -f "$pidfile"
	say "$name stopped (pid $pid)"
}

# spawn_detached <pidfile> <log> <cmd...>: start cmd in its own session
# (setsid), detached from our stdin/stdout and from the lock fd 9, so it
# outlives the calling shell / make. A small bash parent stays in that session:
# it writes cmd's pid to the pid file, waits for it and appends its exit status
# to the log, so a service that dies without a word (a signal, a full disk)
# still says how it ended. The pid file always names cmd itself, which is what
# stop_pid signals.
spawn_detached() {
	local pidfile=$1 log=$2
	shift 2
	rm -f "$pidfile"
	printf 'services: %s starting %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
	# shellcheck disable=SC2016 # $!/$@ expand in the inner shell
	setsid bash -c 'pidfile=$1; shift; "$@" & pid=$!; echo "$pid" >"$pidfile"; wait "$pid"; status=$?
		if ((status > 128)); then
			echo "services: $(date -u +%FT%TZ) pid $pid killed by SIG$(kill -l "$status")"
		else
			echo "services: $(date -u +%FT%TZ) pid $pid exited with status $status"
		fi' services "$pidfile" "$@" >>"$log" 2>&1 </dev/null 9>&- &
	local deadline=$((SECONDS + 10))
	until [[ -s $pidfile ]]; do
		((SECONDS < deadline)) || die "could not start $1 (no pid file $pidfile)"
		sleep 0.05
	done
}

# start_detached <name> <log> <addr> <pidfile> <pattern> <probe> <cmd...>:
# spawn_detached, then wait_ready. A process that exits before it is ready is
# started once more (the log keeps both attempts) before up gives up: a service
# that fails for good fails twice within seconds, one that lost a race at boot
# does not fail the run.
start_detached() {
	local name=$1 log=$2 addr=$3 pidfile=$4 pattern=$5 probe=$6
	shift 6
	spawn_detached "$pidfile" "$log" "$@"
	# wait_ready exits when it fails, having stopped what it waited for.
	if (wait_ready "$name" "$log" "$addr" "$pidfile" "$pattern" "$probe"); then
		return 0
	fi
	echo "services: WARNING: $name did not come up; starting it once more" >&2
	spawn_detached "$pidfile" "$log" "$@"
	wait_ready "$name" "$log" "$addr" "$pidfile" "$pattern" "$probe"
}

apt_install() {
	is_root || die "missing $*; install it (e.g. sudo apt-get install -y $*) and re-run"
	command -v apt-get >/dev/null || die "missing $* and apt-get is not available; install it manually"
	say "installing $* with apt-get"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$LOG_DIR/apt.log" 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get update >>"$LOG_DIR/apt.log" 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$LOG_DIR/apt.log" 2>&1 ||
			die "apt-get install $* failed; see $LOG_DIR/apt.log"
	fi
}

gobin_dir() {
	command -v go >/dev/null || die "go is not on PATH (needed to build ferretdb and minio)"
	local gopath
	gopath=$(go env GOPATH)
	echo "${gopath%%:*}/bin"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
PG_BIN=""
find_pg_bin() {
	local c
	for c in "/usr/lib/postgresql/$PG_MAJOR/bin" "$(pg_config --bindir 2>/dev/null || true)"; do
		if [[ -n $c && -x $c/initdb && -x $c/pg_ctl ]]; then
			PG_BIN=$c
			return 0
		fi
	done
	return 1
}

ensure_pg_bin() {
	[[ -n $PG_BIN ]] && return 0
	if ! find_pg_bin; then
		apt_install "postgresql-$PG_MAJOR"
		find_pg_bin || die "PostgreSQL $PG_MAJOR binaries not found after install"
	fi
}

pg_user_setup_done=""
# Postgres refuses to run as root. As root we run initdb/pg_ctl as the system
# user `postgres` (created if missing); otherwise as the current user.
ensure_pg_user() {
	[[ -n $pg_user_setup_done ]] && return 0
	pg_user_setup_done=1
	is_root || return 0
	if ! id -u postgres >/dev/null 2>&1; then
		say "creating system user postgres"
		useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
			--shell /usr/sbin/nologin postgres
	fi
	# The postgres user must be able to traverse every parent of .data (a clone
	# under /root — mode 0700 on Debian — or under a `mktemp -d` dir is not).
	# Least surprising fix for a dev box: grant traverse-only (o+x, no listing,
	# no read) on exactly the parents that lack it, and say so loudly.
	# Set SWAPMEET_NO_CHMOD=1 to get an error instead.
	if ! runuser -u postgres -- test -x "$DATA" 2>/dev/null; then
		local p="" part blocked=()
		local IFS=/
		for part in ${DATA#/}; do
			p="$p/$part"
			if ! runuser -u postgres -- test -x "$p" 2>/dev/null; then
				blocked+=("$p")
				[[ ${SWAPMEET_NO_CHMOD:-} == 1 ]] || chmod o+x "$p"
			fi
		done
		unset IFS
		if [[ ${SWAPMEET_NO_CHMOD:-} == 1 ]]; then
			die "user postgres cannot traverse to $DATA (blocked at: ${blocked[*]}); run 'chmod o+x' on those dirs or move the clone"
		fi
		echo "services: NOTE: granted traverse-only permission (chmod o+x) to the postgres user on: ${blocked[*]}" >&2
	fi
}

# as_pg <cmd...>: run a command as the cluster owner, from a dir it can read.
as_pg() {
	if is_root; then
		(cd "$DATA" && runuser -u postgres -- "$@")
	else
		(cd "$DATA" && "$@")
	fi
}

# mkdir_pg <mode> <dir>: create a dir owned by the cluster owner.
mkdir_pg() {
	if is_root; then
		install -d -o postgres -g postgres -m "$1" "$2"
	else
		install -d -m "$1" "$2"
	fi
}
touch_pg() {
	[[ -e $1 ]] || : >"$1"
	if is_root; then chown postgres:postgres "$1"; fi
}

pg_running() { # <dir> <port>
	local pid
	pid=$(pidfile_pid "$1/postmaster.pid")
	[[ -n $pid ]] && pid_alive_match "$pid" postgres &&
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$2" -t 2
}

# pg_up <name> <dir> <port> <wal_level> <role> <role attrs> <db>
pg_up() {
	local name=$1 dir=$2 port=$3 wal_level=$4 role=$5 attrs=$6 db=$7
	local log="$LOG_DIR/$name.log"
	ensure_pg_bin
	ensure_pg_user

	if pg_running "$dir" "$port"; then
		say "$name already up on 127.0.0.1:$port"
	else
		if port_open "$port"; then
			die "$name: port 127.0.0.1:$port is already in use by a process this checkout did not start (another clone's services? check with: ss -ltnp 'sport = :$port')"
		fi
		# Socket path limit is ~107 bytes (sun_path).
		if ((${#PG_SOCK_DIR} + 20 > 107)); then
			die "$name: unix socket dir path too long ($PG_SOCK_DIR); use a shorter clone path"
		fi
		mkdir_pg 755 "$PG_SOCK_DIR"
		touch_pg "$log"

		if [[ ! -f $dir/PG_VERSION ]]; then
			if [[ -d $dir ]] && [[ -n $(ls -A "$dir") ]]; then
				die "$name: $dir exists but is not a PostgreSQL cluster; remove it (scripts/services.sh clean) and retry"
			fi
			say "$name: initdb $dir"
			mkdir_pg 700 "$dir"
			as_pg "$PG_BIN/initdb" -D "$dir" -U postgres -E UTF8 --no-locale \
				--auth-local=trust --auth-host=scram-sha-256 >>"$log" 2>&1 ||
				fail_service "$name" "$log" "initdb failed"
			echo "include 'swapmeet.conf'" | as_pg tee -a "$dir/postgresql.conf" >/dev/null
		fi
		local have
		have=$(cat "$dir/PG_VERSION")
		[[ $have == "$PG_MAJOR" ]] || die "$name: $dir is a PostgreSQL $have cluster but binaries are $PG_MAJOR; run 'scripts/services.sh clean'"

		# (Re)written on every start, so edits here apply after `down && up`.
		as_pg tee "$dir/swapmeet.conf" >/dev/null <<-EOF
			# Managed by scripts/services.sh — overwritten on each start.
			listen_addresses = '127.0.0.1'
			port = $port
			unix_socket_directories = '$PG_SOCK_DIR'
			wal_level = $wal_level
			max_replication_slots = 64
			max_wal_senders = 64
			max_connections = 300
			shared_buffers = 256MB
			wal_sender_timeout = 60s
			# The read side's cluster rewrites documents all day (FerretDB's
			# tables, the search rows): with the default 1GB, its WAL forced a
			# checkpoint every minute under load, and every first write of a
			# page after one logs the whole page. Checkpoints on time, and
			# compressed page images, keep the stores' writes steady.
			max_wal_size = 4GB
			wal_compression = lz4
			# A slot left behind (a crashed test, a stopped CDC) is invalidated
			# instead of filling the disk; the CDC then reports it as lost.
			max_slot_wal_keep_size = 4GB
		EOF
		as_pg tee "$dir/pg_hba.conf" >/dev/null <<-EOF
			# Managed by scripts/services.sh — overwritten on each start.
			# TYPE  DATABASE     USER  ADDRESS        METHOD
			local   all          all                  trust
			local   replication  all                  trust
			host    all          all   127.0.0.1/32   scram-sha-256
			host    replication  all   127.0.0.1/32   scram-sha-256
		EOF

		# shellcheck disable=SC2094 # the log is only appended to
		# pg_ctl detaches the postmaster (setsid) itself; -W: we poll below.
		as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$log" -W start >/dev/null 2>>"$log" 9>&- ||
			fail_service "$name" "$log" "pg_ctl start failed"
		local deadline=$((SECONDS + TIMEOUT))
		until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; do
			if ((SECONDS >= deadline)); then
				as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
				fail_service "$name" "$log" "not ready on 127.0.0.1:$port within ${TIMEOUT}s (stopped it)"
			fi
			# postmaster.pid appears quickly; if it is gone again the server died.
			if ((SECONDS >= deadline - TIMEOUT + 3)) && ! pg_pid_alive "$dir"; then
				fail_service "$name" "$log" "server exited during startup"
			fi
			sleep 0.2
		done
		say "$name up on 127.0.0.1:$port"
	fi

	# Role + database (idempotent, also self-heals a dropped db/role); not
	# on a standby, which is read-only and has the primary's.
	[[ -n $role ]] || return 0
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$port" -U postgres -d postgres \
		>>"$log" 2>&1 <<-EOF || fail_service "$name" "$log" "creating role/database $role/$db failed"
			DO \$\$
			BEGIN
			  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
			    CREATE ROLE $role $attrs PASSWORD '$role';
			  ELSE
			    ALTER ROLE $role $attrs PASSWORD '$role';
			  END IF;
			END
			\$\$;
			SELECT 'CREATE DATABASE $db OWNER $role'
			WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
		EOF
	[[ $wal_level == logical ]] || return 0
	app_roles "$name" "$port" "$role" "$db" "$log"
}

# app_roles <name> <port> <owner> <db> <log>: on a write cluster, the
# application's roles beside the schema's owner (docs/history.md). The owner
# runs the migrations; swapmeet_app is the group the migrations grant the
# tables' DML to; swapmeet, a member, is the login the API and the CDC use,
# with REPLICATION for the CDC and nothing it could alter the schema with.
# Only swapmeet_app may annotate transactions: pg_logical_emit_message is
# executable by PUBLIC out of the box, and a privilege of pg_catalog is per
# database, so it is taken back in template1 (every database created later
# copies it) and in the application's database. The owner may signal the
# application's backends, so that it can drop its scratch databases.
app_roles() {
	local name=$1 port=$2 owner=$3 db=$4 log=$5
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$port" -U postgres -d postgres \
		>>"$log" 2>&1 <<-EOF || fail_service "$name" "$log" "creating the application's roles failed"
			DO \$\$
			BEGIN
			  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'swapmeet_app') THEN
			    CREATE ROLE swapmeet_app NOLOGIN;
			  END IF;
			  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'swapmeet') THEN
			    CREATE ROLE swapmeet LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD 'swapmeet';
			  ELSE
			    ALTER ROLE swapmeet LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD 'swapmeet';
			  END IF;
			END
			\$\$;
			GRANT swapmeet_app TO swapmeet;
			GRANT pg_signal_backend TO $owner;
			-- A checkout whose database the application's role owned.
			SELECT 'ALTER DATABASE $db OWNER TO $owner'
			WHERE EXISTS (SELECT FROM pg_database WHERE datname = '$db' AND pg_get_userbyid(datdba) = 'swapmeet')\gexec
		EOF
	local d
	for d in template1 "$db"; do
		"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$port" -U postgres -d "$d" \
			>>"$log" 2>&1 <<-EOF || fail_service "$name" "$log" "restricting annotations in $d failed"
				REASSIGN OWNED BY swapmeet TO $owner;
				REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text),
				                           pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC, swapmeet;
				GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO swapmeet_app;
			EOF
	done
}

# ---------------------------------------------------------------------------
# Scratch clusters: a primary of its own, a physical standby of it, a base
# backup restored as a new timeline. The failover and restore tests run on
# them (never on pg-write, which other tests share), and people can try the
# same by hand. Each lives in .data/clusters/<name>, on the port it is given.
# ---------------------------------------------------------------------------
CLUSTERS_DIR="$DATA/clusters"

cluster_dir() {
	[[ $1 =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "cluster name '$1': use lower-case letters, digits, - and _"
	echo "$CLUSTERS_DIR/$1"
}

cluster_port() {
	[[ $1 =~ ^[0-9]+$ ]] && (($1 > 1024 && $1 < 65536)) || die "port '$1': want 1025-65535"
	echo "$1"
}

cmd_cluster() {
	local sub=${1:-} name=${2:-}
	[[ -n $sub && -n $name ]] || die "usage: cluster up|standby|restore|promote|down <name> ..."
	setup_dirs
	ensure_pg_bin
	ensure_pg_user
	mkdir_pg 755 "$CLUSTERS_DIR"
	mkdir_pg 755 "$PG_SOCK_DIR"
	local dir
	dir=$(cluster_dir "$name")
	case "$sub" in
	up) # up <name> <port>: a primary, role and database like pg-write's
		pg_up "cluster-$name" "$dir" "$(cluster_port "${3:-}")" logical swapmeet_owner "LOGIN CREATEDB NOSUPERUSER" swapmeet
		;;
	standby | restore | copy) # standby|restore|copy <name> <port> <from> <from's port>
		local port from from_dir from_port
		port=$(cluster_port "${3:-}")
		from=${4:-}
		from_dir=$(cluster_dir "$from")
		from_port=$(cluster_port "${5:-}")
		[[ -f $from_dir/PG_VERSION ]] || die "no cluster $from"
		[[ ! -e $dir ]] || die "cluster $name exists; remove it with: $0 cluster down $name --wipe"
		local log="$LOG_DIR/cluster-$name.log"
		touch_pg "$log"
		# A base backup over the unix socket (trusted), its WAL streamed along.
		if [[ $sub == standby ]]; then
			as_pg "$PG_BIN/pg_basebackup" -h "$PG_SOCK_DIR" -p "$from_port" -U postgres -D "$dir" -X stream -c fast -R >>"$log" 2>&1 ||
				fail_service "cluster-$name" "$log" "pg_basebackup from $from failed"
			echo "primary_conninfo = 'host=$PG_SOCK_DIR port=$from_port user=postgres application_name=$name'" |
				as_pg tee -a "$dir/postgresql.auto.conf" >/dev/null
		elif [[ $sub == copy ]]; then
			# Started as is: crash recovery to the end of the backup's WAL,
			# on the same timeline (as a filesystem snapshot would be).
			as_pg "$PG_BIN/pg_basebackup" -h "$PG_SOCK_DIR" -p "$from_port" -U postgres -D "$dir" -X stream -c fast >>"$log" 2>&1 ||
				fail_service "cluster-$name" "$log" "pg_basebackup from $from failed"
		else
			as_pg "$PG_BIN/pg_basebackup" -h "$PG_SOCK_DIR" -p "$from_port" -U postgres -D "$dir" -X stream -c fast >>"$log" 2>&1 ||
				fail_service "cluster-$name" "$log" "pg_basebackup from $from failed"
			# Recover to the end of the backup, then promote: a new timeline,
			# as a point-in-time restore makes. The WAL it needs is in pg_wal.
			as_pg tee -a "$dir/postgresql.auto.conf" >/dev/null <<-EOF
				restore_command = '/bin/false'
				recovery_target = 'immediate'
				recovery_target_action = 'promote'
			EOF
			as_pg touch "$dir/recovery.signal"
		fi
		pg_up "cluster-$name" "$dir" "$port" logical "" "" ""
		;;
	promote)
		as_pg "$PG_BIN/pg_ctl" -D "$dir" -w -t 60 promote >/dev/null ||
			fail_service "cluster-$name" "$LOG_DIR/cluster-$name.log" "pg_ctl promote failed"
		say "cluster-$name promoted"
		;;
	down) # down <name> [--wipe]
		if pg_pid_alive "$dir"; then
			as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 60 stop >/dev/null || true
		fi
		say "cluster-$name stopped"
		if [[ ${3:-} == --wipe ]]; then
			rm -rf "$dir"
		fi
		;;
	*) die "unknown cluster command $sub (up, standby, restore, copy, promote or down)" ;;
	esac
}

# ferretdb_pg_tune makes FerretDB's lookups by _id and by keyword use an
# index. FerretDB 1.24 looks a document up with `_jsonb->$1 @> $2`, which
# its own btree index on _id cannot serve, so every upsert scans the whole
# table. A GIN index on (_jsonb->'_id') serves it once plans are custom (the
# key is a parameter). A search's word is the same kind of lookup on `keywords`, so
# listings tables get a GIN index on (_jsonb->'keywords') too. An event
# trigger adds the indexes to every table FerretDB creates; existing tables
# get them here. Idempotent.
ferretdb_pg_tune() {
	local log="$LOG_DIR/pg-read.log"
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_READ_PORT" -U postgres -d ferretdb \
		>>"$log" 2>&1 <<-'EOF' || fail_service pg-read "$log" "installing the FerretDB _id index trigger failed"
			ALTER DATABASE ferretdb SET plan_cache_mode = force_custom_plan;
			CREATE OR REPLACE FUNCTION swapmeet_index_id(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
			BEGIN
			  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> ''_id'') jsonb_path_ops)',
			                 left(replace(tbl::text, '.', '_'), 50) || '_id_gin', tbl);
			  IF tbl::text LIKE '%listings%' THEN
			    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> ''keywords'') jsonb_path_ops)',
			                   left(replace(tbl::text, '.', '_'), 50) || '_kw_gin', tbl);
			  END IF;
			END $$;
			CREATE OR REPLACE FUNCTION swapmeet_index_new_tables() RETURNS event_trigger LANGUAGE plpgsql AS $$
			DECLARE obj record;
			BEGIN
			  FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
			    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = obj.objid AND attname = '_jsonb') THEN
			      PERFORM swapmeet_index_id(obj.objid::regclass);
			    END IF;
			  END LOOP;
			END $$;
			DROP EVENT TRIGGER IF EXISTS swapmeet_index_new_tables;
			CREATE EVENT TRIGGER swapmeet_index_new_tables ON ddl_command_end
			  WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION swapmeet_index_new_tables();
			SELECT swapmeet_index_id(c.oid::regclass)
			FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = '_jsonb'
			WHERE c.relkind = 'r';
		EOF
}

pg_pid_alive() {
	local pid
	pid=$(pidfile_pid "$1/postmaster.pid")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

pg_down() { # <name> <dir>
	local name=$1 dir=$2
	if [[ ! -f $dir/PG_VERSION ]] || ! pg_pid_alive "$dir"; then
		say "$name already down"
		return 0
	fi
	ensure_pg_bin
	as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null ||
		fail_service "$name" "$LOG_DIR/$name.log" "pg_ctl stop failed"
	say "$name stopped"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------
redis_ping() { # [port]
	local port=${1:-$REDIS_PORT}
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf 'PING\r\n' >&3
		IFS= read -r -t 2 line <&3 || exit 1
		[[ $line == +PONG* ]]
	) 2>/dev/null
}

redis_running() {
	pid_alive_match "$(pidfile_pid "$REDIS_PID")" redis-server && redis_ping
}

redis_up() {
	local log="$LOG_DIR/redis.log"
	if redis_running; then
		say "redis already up on 127.0.0.1:$REDIS_PORT"
		return 0
	fi
	command -v redis-server >/dev/null || apt_install redis-server
	if port_open "$REDIS_PORT"; then
		die "redis: port 127.0.0.1:$REDIS_PORT is already in use by a process this checkout did not start"
	fi
	install -d -m 755 "$DATA/redis"
	rm -f "$REDIS_PID"
	# shellcheck disable=SC2094 # the log is only appended to
	# --daemonize yes: redis forks, setsid()s and writes its own pid file.
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
		--daemonize yes --pidfile "$REDIS_PID" --logfile "$log" --dir "$DATA/redis" \
		</dev/null >>"$log" 2>&1 9>&- || fail_service redis "$log" "redis-server failed to start"
	local deadline=$((SECONDS + TIMEOUT))
	until [[ -s $REDIS_PID ]]; do
		((SECONDS < deadline)) || fail_service redis "$log" "no pid file $REDIS_PID within ${TIMEOUT}s"
		sleep 0.05
	done
	wait_ready redis "$log" "127.0.0.1:$REDIS_PORT" "$REDIS_PID" redis-server redis_ping
	say "redis up on 127.0.0.1:$REDIS_PORT"
}

# ---------------------------------------------------------------------------
# Redis Cluster (optional): one redis-server per port, each with its own dir
# holding its nodes.conf, formed into a cluster once with redis-cli.
# ---------------------------------------------------------------------------
redis_cluster_pidfile() { echo "$RUN_DIR/redis-cluster-$1.pid"; }

redis_cluster_node_running() { # <port>
	pid_alive_match "$(pidfile_pid "$(redis_cluster_pidfile "$1")")" redis-server && redis_ping "$1"
}

# redis_cluster_info <port> <field>: one field of CLUSTER INFO on that node.
redis_cluster_info() {
	redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

redis_cluster_ok() { [[ $(redis_cluster_info "${REDIS_CLUSTER_PORTS[0]}" cluster_state) == ok ]]; }

redis_cluster_running() {
	local port
	for port in "${REDIS_CLUSTER_PORTS[@]}"; do
		redis_cluster_node_running "$port" || return 1
	done
	redis_cluster_ok
}

redis_cluster_node_up() { # <port>
	local port=$1 pidfile log dir
	pidfile=$(redis_cluster_pidfile "$port")
	log="$LOG_DIR/redis-cluster-$port.log"
	dir="$REDIS_CLUSTER_DIR/$port"
	if redis_cluster_node_running "$port"; then
		return 0
	fi
	if port_open "$port"; then
		die "redis-cluster: port 127.0.0.1:$port is already in use by a process this checkout did not start"
	fi
	install -d -m 755 "$dir"
	rm -f "$pidfile"
	# shellcheck disable=SC2094 # the log is only appended to
	redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
		--maxmemory-policy noeviction \
		--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
		--daemonize yes --pidfile "$pidfile" --logfile "$log" --dir "$dir" \
		</dev/null >>"$log" 2>&1 9>&- || fail_service "redis-cluster $port" "$log" "redis-server failed to start"
	local deadline=$((SECONDS + TIMEOUT))
	until [[ -s $pidfile ]]; do
		((SECONDS < deadline)) || fail_service "redis-cluster $port" "$log" "no pid file $pidfile within ${TIMEOUT}s"
		sleep 0.05
	done
	wait_ready "redis-cluster $port" "$log" "127.0.0.1:$port" "$pidfile" redis-server redis_ping "$port"
}

redis_cluster_up() {
	if redis_cluster_running; then
		say "redis-cluster already up on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[-1]}"
		return 0
	fi
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server redis-tools
	local port addrs=() log="$LOG_DIR/redis-cluster.log"
	for port in "${REDIS_CLUSTER_PORTS[@]}"; do
		redis_cluster_node_up "$port"
		addrs+=("127.0.0.1:$port")
	done
	# Form the cluster once: nodes that restart keep it in their nodes.conf.
	if [[ $(redis_cluster_info "${REDIS_CLUSTER_PORTS[0]}" cluster_slots_assigned) == 0 ]]; then
		say "redis-cluster: creating the cluster of ${addrs[*]}"
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
			</dev/null >>"$log" 2>&1 9>&- || fail_service redis-cluster "$log" "redis-cli --cluster create failed"
	fi
	# A node whose dir was wiped while the others kept theirs never gets
	# there: `down redis-cluster`, remove .data/redis-cluster, and retry.
	wait_ready redis-cluster "$log" "127.0.0.1:${REDIS_CLUSTER_PORTS[0]}" "" "" redis_cluster_ok
	say "redis-cluster up on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[-1]}"
}

redis_cluster_down() {
	local port
	for port in "${REDIS_CLUSTER_PORTS[@]}"; do
		stop_pid "redis-cluster $port" "$(redis_cluster_pidfile "$port")" redis-server
	done
}

# ---------------------------------------------------------------------------
# FerretDB
# ---------------------------------------------------------------------------
ferretdb_bin() {
	local hash
	hash=$(cat "$FERRETDB_SRC/go.mod" "$FERRETDB_SRC/go.sum" "$FERRETDB_SRC/main.go" | sha256sum | cut -c1-12)
	echo "$(gobin_dir)/swapmeet-ferretdb-$hash"
}

ensure_ferretdb_bin() {
	local bin=$1 log="$LOG_DIR/ferretdb-build.log"
	[[ -x $bin ]] && return 0
	say "building ferretdb launcher -> $bin (first time only, ~1 minute)"
	mkdir -p "$(dirname "$bin")"
	if ! (cd "$FERRETDB_SRC" && GOWORK=off go build -trimpath -o "$bin.tmp.$$" .) >"$log" 2>&1; then
		rm -f "$bin.tmp.$$"
		fail_service ferretdb-build "$log" "go build of scripts/ferretdb failed"
	fi
	sync "$bin.tmp.$$"
	mv -f "$bin.tmp.$$" "$bin"
}

# mongo_ping: send a real OP_MSG {ping: 1, $db: "admin"} and require {ok: 1} in
# the reply — FerretDB answers ping only when its PostgreSQL backend works.
mongo_ping() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$FERRETDB_PORT" || exit 1
		# header: len=51 reqID=1 respTo=0 opCode=2013 | flags=0 | kind 0 | BSON(30 bytes)
		# shellcheck disable=SC2016 # literal "$db" key
		printf '\x33\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00''\x00\x00\x00\x00''\x00''\x1e\x00\x00\x00''\x10ping\x00\x01\x00\x00\x00''\x02$db\x00\x06\x00\x00\x00admin\x00''\x00' >&3
		local len hex
		len=$(timeout 3 dd bs=1 count=4 <&3 2>/dev/null | od -An -tu4 | tr -d ' \n')
		[[ $len =~ ^[0-9]+$ ]] && ((len > 4 && len < 65536)) || exit 1
		hex=$(timeout 3 dd bs=1 count=$((len - 4)) <&3 2>/dev/null | od -An -tx1 -v | tr -d ' \n')
		# "ok": double 1.0 or int32 1
		[[ $hex == *016f6b00000000000000f03f* || $hex == *106f6b0001000000* ]]
	) 2>/dev/null
}

ferretdb_running() {
	pid_alive_match "$(pidfile_pid "$FERRETDB_PID")" swapmeet-ferretdb && mongo_ping
}

ferretdb_up() {
	local log="$LOG_DIR/ferretdb.log"
	if ferretdb_running; then
		say "ferretdb already up on $FERRETDB_ADDR"
		return 0
	fi
	local bin
	bin=$(ferretdb_bin)
	ensure_ferretdb_bin "$bin"
	if pid_alive_match "$(pidfile_pid "$FERRETDB_PID")" swapmeet-ferretdb; then
		# ours, still starting up: just wait
		wait_ready ferretdb "$log" "$FERRETDB_ADDR" "$FERRETDB_PID" swapmeet-ferretdb mongo_ping
	else
		if port_open "$FERRETDB_PORT"; then
			die "ferretdb: port $FERRETDB_ADDR is already in use by a process this checkout did not start"
		fi
		start_detached ferretdb "$log" "$FERRETDB_ADDR" "$FERRETDB_PID" swapmeet-ferretdb mongo_ping \
			env FERRETDB_TELEMETRY=disable DO_NOT_TRACK=1 \
			"$bin" -listen-addr "$FERRETDB_ADDR" -postgresql-url "$FERRETDB_PG_URL" -log-level info
	fi
	say "ferretdb up on $FERRETDB_ADDR (backend 127.0.0.1:$PG_READ_PORT)"
}

# ---------------------------------------------------------------------------
# MinIO
# ---------------------------------------------------------------------------
minio_bin() { echo "$(gobin_dir)/minio-$MINIO_VERSION"; }

ensure_minio_bin() {
	local bin=$1 log="$LOG_DIR/minio-build.log"
	[[ -x $bin ]] && return 0
	say "building minio $MINIO_VERSION -> $bin (first time only, takes ~3 minutes)"
	mkdir -p "$(dirname "$bin")"
	local tmp
	tmp=$(mktemp -d)
	if ! (cd "$tmp" && GOWORK=off GOBIN="$tmp/bin" go install "$MINIO_MODULE@$MINIO_VERSION") >"$log" 2>&1; then
		rm -rf "$tmp"
		fail_service minio-build "$log" "go install $MINIO_MODULE@$MINIO_VERSION failed"
	fi
	mv -f "$tmp/bin/minio" "$bin.tmp.$$"
	sync "$bin.tmp.$$"
	mv -f "$bin.tmp.$$" "$bin"
	rm -rf "$tmp"
}

minio_ready() { curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$MINIO_PORT/minio/health/live"; }

minio_running() {
	pid_alive_match "$(pidfile_pid "$MINIO_PID")" "minio-$MINIO_VERSION" && minio_ready
}

minio_up() {
	local log="$LOG_DIR/minio.log"
	command -v curl >/dev/null || apt_install curl ca-certificates
	if minio_running; then
		say "minio already up on 127.0.0.1:$MINIO_PORT (console 127.0.0.1:$MINIO_CONSOLE_PORT)"
		return 0
	fi
	local bin
	bin=$(minio_bin)
	ensure_minio_bin "$bin"
	if pid_alive_match "$(pidfile_pid "$MINIO_PID")" "minio-$MINIO_VERSION"; then
		# ours, still starting up: just wait
		wait_ready minio "$log" "127.0.0.1:$MINIO_PORT" "$MINIO_PID" "minio-$MINIO_VERSION" minio_ready
	else
		local p
		for p in "$MINIO_PORT" "$MINIO_CONSOLE_PORT"; do
			if port_open "$p"; then
				die "minio: port 127.0.0.1:$p is already in use by a process this checkout did not start"
			fi
		done
		install -d -m 755 "$MINIO_DIR"
		start_detached minio "$log" "127.0.0.1:$MINIO_PORT" "$MINIO_PID" "minio-$MINIO_VERSION" minio_ready \
			env MINIO_ROOT_USER="$MINIO_ROOT_USER" MINIO_ROOT_PASSWORD="$MINIO_ROOT_PASSWORD" \
			MINIO_UPDATE=off MINIO_BROWSER=on \
			"$bin" server --address "127.0.0.1:$MINIO_PORT" \
			--console-address "127.0.0.1:$MINIO_CONSOLE_PORT" "$MINIO_DIR"
	fi
	say "minio up on 127.0.0.1:$MINIO_PORT (console 127.0.0.1:$MINIO_CONSOLE_PORT)"
}

# minio_api_ready: the API's user may reach the media bucket (a signed HEAD).
minio_api_ready() {
	curl -fsS --max-time 2 -o /dev/null -I --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$MINIO_API_USER:$MINIO_API_PASSWORD" "http://127.0.0.1:$MINIO_PORT/$MINIO_BUCKET"
}

# minio_setup runs `swapmeet media setup` as MinIO's root, as compose's
# media-setup service does: the bucket, and the API's user with its policy.
# It runs again when the setup's code changed since the last run.
minio_setup() {
	local want log="$LOG_DIR/media-setup.log"
	want=$(cat "$REPO_ROOT/internal/media/setup.go" "$REPO_ROOT/internal/media/bootstrap.go" | sha256sum | cut -d' ' -f1)
	if [[ -f $MINIO_SETUP_STAMP && $(<"$MINIO_SETUP_STAMP") == "$want" ]] && minio_api_ready; then
		return 0
	fi
	command -v go >/dev/null || die "go is not on PATH (needed to run swapmeet media setup)"
	say "setting up the media bucket and the API's user (swapmeet media setup)"
	if ! (cd "$REPO_ROOT" && eval "$(cmd_env)" && go run ./cmd/swapmeet media setup) >"$log" 2>&1; then
		fail_service media-setup "$log" "swapmeet media setup failed"
	fi
	minio_api_ready || fail_service media-setup "$log" "the API's user cannot reach bucket $MINIO_BUCKET after setup"
	echo "$want" >"$MINIO_SETUP_STAMP"
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------
setup_dirs() {
	install -d -m 755 "$DATA" "$LOG_DIR" "$RUN_DIR"
	# Serialise concurrent invocations (e.g. parallel make targets). fd 9 is
	# closed for every spawned service so they never inherit the lock.
	if command -v flock >/dev/null; then
		exec 9>"$RUN_DIR/services.lock"
		flock 9
	fi
}

cmd_up() {
	local start=$SECONDS
	case "${1:-}" in
	"") ;;
	redis-cluster)
		setup_dirs
		redis_cluster_up
		return 0
		;;
	*) die "unknown service for up: $1 (expected redis-cluster, or nothing for all the others)" ;;
	esac
	setup_dirs
	pg_up pg-write "$PG_WRITE_DIR" "$PG_WRITE_PORT" logical swapmeet_owner "LOGIN CREATEDB NOSUPERUSER" swapmeet
	pg_up pg-read "$PG_READ_DIR" "$PG_READ_PORT" replica ferretdb "LOGIN CREATEDB NOSUPERUSER" ferretdb
	# The search store: a database of its own on the read side's cluster.
	pg_up pg-read "$PG_READ_DIR" "$PG_READ_PORT" replica ferretdb "LOGIN CREATEDB NOSUPERUSER" swapmeet_search
	ferretdb_pg_tune
	redis_up
	ferretdb_up
	minio_up
	minio_setup
	say "all services up ($((SECONDS - start))s); env: eval \"\$($0 env)\""
}

cmd_down() {
	local wipe=""
	case "${1:-}" in
	"") ;;
	--wipe) wipe=1 ;;
	redis-cluster)
		if [[ -d $DATA ]]; then
			setup_dirs
			redis_cluster_down
		fi
		return 0
		;;
	*) die "unknown option for down: $1 (expected --wipe or redis-cluster)" ;;
	esac
	if [[ -d $DATA ]]; then
		setup_dirs
		redis_cluster_down
		# Scratch clusters a test left running (killed before its cleanup).
		local c
		for c in "$CLUSTERS_DIR"/*/; do
			[[ -f $c/PG_VERSION ]] && pg_down "cluster-$(basename "$c")" "${c%/}"
		done
		stop_pid ferretdb "$FERRETDB_PID" swapmeet-ferretdb
		stop_pid minio "$MINIO_PID" "minio-$MINIO_VERSION"
		stop_pid redis "$REDIS_PID" redis-server
		pg_down pg-read "$PG_READ_DIR"
		pg_down pg-write "$PG_WRITE_DIR"
	else
		say "nothing to stop ($DATA does not exist)"
	fi
	if [[ -n $wipe ]]; then
		rm -rf "$DATA"
		say "wiped $DATA"
	fi
}

cmd_status() {
	local all=0
	find_pg_bin || true
	report() { # <name> <addr> <probe...>
		local name=$1 addr=$2
		shift 2
		if "$@"; then
			say "$name up on $addr"
		else
			say "$name down ($addr)"
			all=1
		fi
	}
	pg_status() { [[ -n $PG_BIN ]] && pg_running "$@"; }
	report pg-write "127.0.0.1:$PG_WRITE_PORT" pg_status "$PG_WRITE_DIR" "$PG_WRITE_PORT"
	report pg-read "127.0.0.1:$PG_READ_PORT" pg_status "$PG_READ_DIR" "$PG_READ_PORT"
	report redis "127.0.0.1:$REDIS_PORT" redis_running
	report ferretdb "$FERRETDB_ADDR" ferretdb_running
	report minio "127.0.0.1:$MINIO_PORT" minio_running
	# Optional: not started by `up`, so it does not count for the exit status.
	if redis_cluster_running; then
		say "redis-cluster up on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[-1]}"
	else
		say "redis-cluster down (127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[-1]}; optional, start it with: $0 up redis-cluster)"
	fi
	return $all
}

# cmd_tools: the load generators that swapmeet-bench runs against the
# services and the API, as the references of its figures.
cmd_tools() {
	setup_dirs
	command -v h2load >/dev/null || apt_install nghttp2-client
	command -v redis-benchmark >/dev/null || apt_install redis-tools
	# /usr/bin/pgbench is a wrapper (postgresql-client-common); Debian ships
	# pgbench itself with the server, next to initdb.
	ensure_pg_bin
	if [[ ! -x $PG_BIN/pgbench ]] || ! command -v pgbench >/dev/null || ! command -v pg_recvlogical >/dev/null; then
		apt_install "postgresql-$PG_MAJOR"
	fi
	local t
	for t in h2load redis-benchmark pgbench pg_recvlogical; do
		command -v "$t" >/dev/null || die "$t is missing after installing its package"
	done
	[[ -x $PG_BIN/pgbench ]] || die "$PG_BIN/pgbench is missing after installing postgresql-$PG_MAJOR"
	say "bench tools present: h2load, redis-benchmark, pgbench, pg_recvlogical"
}

cmd_env() {
	cat <<-EOF
		export SWAPMEET_PG_URL='$PG_WRITE_URL'
		export SWAPMEET_PG_MIGRATE_URL='$PG_OWNER_URL'
		export SWAPMEET_PG_ADMIN_URL='postgres://postgres@/swapmeet?host=$PG_SOCK_DIR&port=$PG_WRITE_PORT'
		export SWAPMEET_READ_PG_URL='$PG_READ_URL'
		export SWAPMEET_SEARCH_URL='$SEARCH_URL'
		export SWAPMEET_MONGO_URL='mongodb://$FERRETDB_ADDR/'
		export SWAPMEET_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
		export SWAPMEET_REDIS_CLUSTER_URL='$REDIS_CLUSTER_URL'
		export SWAPMEET_S3_ENDPOINT='127.0.0.1:$MINIO_PORT'
		export SWAPMEET_S3_ACCESS_KEY='$MINIO_API_USER'
		export SWAPMEET_S3_SECRET_KEY='$MINIO_API_PASSWORD'
		export SWAPMEET_S3_ADMIN_ACCESS_KEY='$MINIO_ROOT_USER'
		export SWAPMEET_S3_ADMIN_SECRET_KEY='$MINIO_ROOT_PASSWORD'
		export SWAPMEET_FERRETDB_BIN='$(ferretdb_bin)'
	EOF
}

usage() {
	sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case "$cmd" in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	clean) cmd_down --wipe ;;
	status) cmd_status ;;
	env) cmd_env ;;
	tools) cmd_tools ;;
	cluster) cmd_cluster "$@" ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
