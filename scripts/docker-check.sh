#!/usr/bin/env bash
# make docker-check: build the images and run docker/compose.yaml for real, then leave the
# machine as it was.
#
# Where no Docker engine runs (the usual case on a build machine), this script installs
# Debian's docker.io, debootstrap and docker-compose, starts a dockerd of its own (no bridge,
# no iptables, no IP forwarding; its own socket, pidfile and exec root under a temporary
# directory, its data root in the cache), makes a base image from Debian's packages with
# debootstrap + docker import (cached), builds RabbitMQ from Debian's rabbitmq-server on that
# base and the mash image, and brings compose up with host networking on ports that do not
# clash with the machine's broker or PostgreSQL. It checks that every service becomes healthy,
# submits a contact from a container and reads its packet back as the screening role, kills
# one adapter and restarts it with nothing lost, then removes every container and volume,
# stops the daemon and checks that no bridge, firewall rule or mount was left behind.
#
# Environment: MASH_DOCKER_CACHE (default /var/cache/mash-docker: the base image tarball and
# the daemon's image store), MASH_DOCKER_FRESH=1 (empty the cache first: a run "from
# nothing"), MASH_DOCKER_PORT_BASE (default 27670: ports BASE..BASE+19 are used).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CACHE=${MASH_DOCKER_CACHE:-/var/cache/mash-docker}
PORT_BASE=${MASH_DOCKER_PORT_BASE:-27670}
PROJECT=mashcheck
STARTED=$(date +%s)

say() { printf '[docker-check %4ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
    die "needs root (it installs packages and starts its own dockerd)"
fi

# --- packages ------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    # Another apt on the machine holds the lock for a while: wait for it, not fail.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y \
        --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get -o DPkg::Lock::Timeout=900 update >/dev/null &&
             DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y \
                 --no-install-recommends "${missing[@]}" >/dev/null; }
fi
# Debian's client matches Debian's daemon; a newer client elsewhere on PATH also works.
DOCKER=/usr/bin/docker
[[ -x $DOCKER ]] || DOCKER=$(command -v docker)

if [[ ${MASH_DOCKER_FRESH:-0} == 1 && -d $CACHE ]]; then
    say "MASH_DOCKER_FRESH=1: emptying $CACHE"
    rm -rf "$CACHE"
fi
mkdir -p "$CACHE"

# What must be the same afterwards: network links, firewall rules, mounts.
snapshot() {
    ip -o link show | awk -F': ' '{print $2}' | sort
    { iptables-save 2>/dev/null || true; } | grep -v '^#' | sed 's/\[[0-9:]*\]//'
    awk '{print $2, $3}' /proc/mounts | sort
}
BEFORE=$(snapshot)

STATE=$(mktemp -d /tmp/mash-docker.XXXXXX)
DAEMON_PID=
ROOTFS=

# Defined before the clean-up, which calls them when a run fails early (in a build, say).
compose() { docker-compose -p "$PROJECT" -f "$ROOT/docker/compose.yaml" "$@"; }
agency_compose() {
    docker-compose -p "${PROJECT}agency" --env-file "$STATE/agency.env" \
        -f "$ROOT/docker/compose.agency.yaml" "$@"
}

FINISHED=0  # set at the very end: an interrupted run is never reported as passed
cleanup() {
    local code=$?
    set +e
    ((FINISHED)) || ((code != 0)) || code=1
    if $DOCKER version >/dev/null 2>&1; then
        if ((code != 0)); then
            say "logs of the failed run:"
            compose ps
            compose logs --no-color --tail=40
        fi
        compose --profile tools down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
        if [[ -f $STATE/agency.env ]]; then
            agency_compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
        fi
        # Containers of a run that died before compose knew them.
        $DOCKER ps -aq --filter "label=com.docker.compose.project=$PROJECT" |
            xargs -r $DOCKER rm -f >/dev/null 2>&1
        # Dangling layers of our rebuilds, in our own engine only.
        [[ -n $DAEMON_PID ]] && $DOCKER image prune -f >/dev/null 2>&1
    fi
    if [[ -n $DAEMON_PID ]]; then
        kill "$DAEMON_PID" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$DAEMON_PID" 2>/dev/null && kill -9 "$DAEMON_PID"
    fi
    # debootstrap interrupted half-way leaves /proc and /sys mounted in its target; a daemon
    # killed hard can leave its overlay and shm mounts: take down anything under our dirs.
    awk '{print $2}' /proc/mounts | grep -E "^($STATE|$CACHE)" | sort -r |
        xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$STATE"
    local after
    after=$(snapshot)
    if [[ $after != "$BEFORE" ]]; then
        say "the machine differs from before the check:"
        diff <(echo "$BEFORE") <(echo "$after") >&2
        code=1
    else
        say "no bridge, firewall rule or mount left behind"
    fi
    if ((code == 0)); then
        say "PASSED in $(($(date +%s) - STARTED))s"
    fi
    exit $code
}
trap cleanup EXIT
trap "exit 143" TERM INT

# --- the daemon ----------------------------------------------------------------------------
if $DOCKER info >/dev/null 2>&1; then
    # An engine already runs (DOCKER_HOST or the default socket): use it, start none, stop
    # none. Containers still use the host's network only.
    say "using the Docker engine that already runs here"
else
    say "starting dockerd (no bridge, no iptables; data root $CACHE/engine)"
    # --bridge=none, --iptables/--ip-masq/--ip-forward=false: containers use the host's network,
    # so the daemon has no reason to touch links or firewall rules and is told not to.
    dockerd --bridge=none --iptables=false --ip-masq=false --ip-forward=false --ip6tables=false \
        --data-root "$CACHE/engine" --exec-root "$STATE/exec" --pidfile "$STATE/docker.pid" \
        --host "unix://$STATE/docker.sock" --storage-driver overlay2 \
        >"$STATE/dockerd.log" 2>&1 &
    DAEMON_PID=$!
    export DOCKER_HOST=unix://$STATE/docker.sock
    for _ in $(seq 120); do
        $DOCKER version >/dev/null 2>&1 && break
        kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$STATE/dockerd.log" >&2; die "dockerd exited"; }
        sleep 0.5
    done
    $DOCKER version >/dev/null 2>&1 || die "dockerd did not answer within 60s"
    say "dockerd ready"
fi

# --- the base image ------------------------------------------------------------------------
BASE=mash-base:bookworm
if ! $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
    TARBALL=$CACHE/bookworm-minbase.tar
    if [[ ! -s $TARBALL ]]; then
        say "debootstrap bookworm (minbase, python3, python3-venv, ca-certificates)"
        ROOTFS=$STATE/rootfs
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$ROOTFS" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 ||
            { tail -20 "$STATE/debootstrap.log" >&2; die "debootstrap failed"; }
        # This machine reaches PyPI and Debian through a proxy with its own CA: the base
        # image trusts what the machine trusts, so pip and apt in the builds can verify it.
        if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
            cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
            chroot "$ROOTFS" update-ca-certificates >/dev/null
        fi
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
        tar -C "$ROOTFS" -cf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL"
        rm -rf "$ROOTFS"
    fi
    say "docker import $BASE"
    $DOCKER import "$TARBALL" "$BASE" >/dev/null
fi

# --- the images ----------------------------------------------------------------------------
# --network host: the builds reach Debian and PyPI without a bridge.
say "building mash-rabbitmq:check (Debian's rabbitmq-server on $BASE)"
$DOCKER build -q --network host --build-arg BASE=$BASE -t mash-rabbitmq:check \
    -f docker/rabbitmq/Dockerfile docker/rabbitmq >/dev/null
say "building mash-hub:check"
build_started=$(date +%s)
$DOCKER build -q --network host --build-arg BASE=$BASE -t mash-hub:check \
    -f docker/Dockerfile . >/dev/null
say "mash image built in $(($(date +%s) - build_started))s"

# --- compose -------------------------------------------------------------------------------
export MASH_IMAGE=mash-hub:check MASH_RABBITMQ_IMAGE=mash-rabbitmq:check
export MASH_AMQPS_PORT=$PORT_BASE MASH_MANAGEMENT_PORT=$((PORT_BASE + 1))
export MASH_BROKER_DIST_PORT=$((PORT_BASE + 2)) MASH_BROKER_EPMD_PORT=$((PORT_BASE + 3))
export MASH_HUB_METRICS_PORT=$((PORT_BASE + 10))
export MASH_POLICE_METRICS_PORT=$((PORT_BASE + 11)) MASH_HEALTH_METRICS_PORT=$((PORT_BASE + 12))
export MASH_EDUCATION_METRICS_PORT=$((PORT_BASE + 13)) MASH_HOUSING_METRICS_PORT=$((PORT_BASE + 14))
export MASH_KEEPER_METRICS_PORT=$((PORT_BASE + 15)) MASH_AGENCY_METRICS_PORT=$((PORT_BASE + 16))
for port in $(seq "$PORT_BASE" $((PORT_BASE + 19))); do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use here; set MASH_DOCKER_PORT_BASE to a free range"
    fi
done

SERVICES=(rabbitmq hub police health education housing keeper)
say "docker-compose up (set-up, broker, hub, four adapters, restricted-file keeper)"
compose up -d --no-build >"$STATE/up.log" 2>&1 || { cat "$STATE/up.log" >&2; die "compose up failed"; }

container_of() { compose ps -q "$1"; }
health_of() {
    local id
    id=$(container_of "$1")
    [[ -n $id ]] || { echo missing; return; }
    $DOCKER inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id"
}
wait_healthy() {
    local deadline=$(($(date +%s) + $1)) service status waiting
    shift
    while :; do
        waiting=()
        for service in "$@"; do
            status=$(health_of "$service")
            [[ $status == healthy ]] || waiting+=("$service:$status")
        done
        ((${#waiting[@]} == 0)) && return 0
        (($(date +%s) > deadline)) && die "not healthy in time: ${waiting[*]}"
        sleep 2
    done
}
wait_healthy 300 "${SERVICES[@]}"
setup_id=$($DOCKER ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=setup")
[[ $($DOCKER inspect -f '{{.State.ExitCode}}' "$setup_id") == 0 ]] || die "set-up did not exit 0"
say "healthy: ${SERVICES[*]} (set-up exited 0)"

# The broker: guest gone, TLS only, the hardened limits in force.
ctl() { compose exec -T rabbitmq rabbitmqctl -q "$@"; }
users=$(ctl list_users)
if grep -qw guest <<<"$users"; then die "the broker has a guest user"; fi
setting() { ctl eval "application:get_env(rabbit, $1)." | tr -d '\r\n'; }
[[ $(setting max_message_size) == "{ok,4194304}" ]] || die "max_message_size not 4 MiB"
[[ $(setting loopback_users) == *'<<"guest">>'* ]] || die "loopback_users lacks guest"
[[ $(setting disk_free_limit) == '{ok,"2GB"}' ]] || die "disk_free_limit not 2GB"
if (echo >"/dev/tcp/127.0.0.1/$MASH_AMQPS_PORT") 2>/dev/null; then
    say "broker: no guest, TLS listener on $MASH_AMQPS_PORT, 4 MiB messages, loopback_users, disk alarm at 2GB"
fi

# Every mash command runs in the image (help is enough to load each one's code), in one
# container: each start of the CLI costs seconds on a busy machine.
commands=("--help" "hub --help" "adapter list" "contact submit --help" "contact rerate --help"
    "broker permissions" "keys --help" "restricted receive --help" "restricted read --help"
    "audit verify --help" "schemas check" "status --help" "dlq list --help" "report --help"
    "health --help" "bench --help" "demo --help" "asyncapi")
script="set -e"
for command in "${commands[@]}"; do
    script+="; mash $command >/dev/null || { echo \"'mash $command' failed\" >&2; exit 1; }"
done
$DOCKER run --rm --network host --entrypoint sh "$MASH_IMAGE" -c "$script" ||
    die "a mash command failed in the image"
$DOCKER run --rm --network host --entrypoint python "$MASH_IMAGE" \
    -c "import bench, faststream, psutil" || die "mash bench's modules are missing from the image"
say "every mash command loads in the image (mash bench included)"

submit() {  # a contact file from the image's examples, as the screening role; prints its ref
    compose run --rm --no-deps -T screening contact submit --timeout 60 \
        "/opt/mash-src/examples/contacts/$1" 2>>"$STATE/submit.log" | tail -1
}
read_packet() {  # the packet of $1 read back from screening.packets, with $2 answered
    compose run --rm --no-deps -T --entrypoint python screening \
        /opt/mash-src/docker/tools/read_packet.py "$1" --expect "$2" --timeout "${3:-90}" \
        2> >(grep -v "^Creating" >&2)
}

ref=$(submit case-17-year-old-drugs-warrant.json)
[[ $ref == MASH-* ]] || { cat "$STATE/submit.log" >&2; die "no MASH reference from the submit"; }
say "submitted $ref from a container"
read_packet "$ref" police,health,education,housing || die "no complete packet for $ref"

# The operator's tools as the operator role (the only one that reads dead letters).
for command in "status" "report" "dlq list"; do
    # shellcheck disable=SC2086
    compose run --rm --no-deps -T operator $command >"$STATE/operator.log" 2>&1 ||
        { cat "$STATE/operator.log" >&2; die "'mash $command' as the operator failed"; }
done
say "mash status, report and dlq list as the operator role"

# One adapter killed (SIGKILL, no shutdown) and started again: a contact sent while it was
# down is answered once it is back, nothing lost.
say "killing the police adapter"
compose kill police >/dev/null 2>&1
ref2=$(submit case-unborn-baby-gp.json)
[[ $ref2 == MASH-* ]] || { cat "$STATE/submit.log" >&2; die "no MASH reference while police is down"; }
say "submitted $ref2 while police is down; starting police again"
compose start police >/dev/null 2>&1
wait_healthy 120 police
read_packet "$ref2" police,health,education,housing || die "the packet of $ref2 lost police's answer"
say "police restarted; $ref2 complete with police's answer"

# The agency deployment: one adapter alone (docker/compose.agency.yaml) against the broker,
# from folders on the host, as an agency's IT team runs it. The housing adapter of the full
# MASH stops; the agency's own takes over with housing's certificate and keys.
say "one agency's adapter alone (compose.agency.yaml), housing, from host folders"
compose stop housing >/dev/null 2>&1
mkdir -p "$STATE/housing"
$DOCKER cp "$(container_of housing):/run/mash/." "$STATE/housing/"
chown -R 10001:10001 "$STATE/housing"
cat >"$STATE/agency.env" <<ENV
MASH_IMAGE=$MASH_IMAGE
MASH_AGENCY=housing
MASH_PREFIX=mash
MASH_AMQP_URL=amqps://localhost:$MASH_AMQPS_PORT/mash
MASH_AGENCY_TLS_DIR=$STATE/housing/tls
MASH_AGENCY_KEYS_DIR=$STATE/housing/keys
MASH_AGENCY_RECORDS_DIR=$ROOT/adapters/housing/data
MASH_AGENCY_METRICS_PORT=$MASH_AGENCY_METRICS_PORT
ENV
agency_compose up -d --no-build >"$STATE/agency-up.log" 2>&1 ||
    { cat "$STATE/agency-up.log" >&2; die "compose.agency.yaml up failed"; }
agency_id=$(agency_compose ps -q adapter)
for _ in $(seq 60); do
    [[ $($DOCKER inspect -f '{{.State.Health.Status}}' "$agency_id") == healthy ]] && break
    sleep 2
done
[[ $($DOCKER inspect -f '{{.State.Health.Status}}' "$agency_id") == healthy ]] ||
    { agency_compose logs --tail=30 >&2; die "the agency's adapter is not healthy"; }
ref3=$(submit green-housing-overcrowding.json)
read_packet "$ref3" housing || die "no packet for $ref3 with the agency's housing answer"
say "the agency's own housing adapter answered $ref3"
agency_compose down --volumes --timeout 10 >/dev/null 2>&1
compose start housing >/dev/null 2>&1

# The runbook's online backup of the hub, from a container beside the running hub, and a
# certificate renewal from the set-up's CA (docs/operating.md).
mkdir -p "$STATE/backups" && chown 10001 "$STATE/backups"
# (docker run with the hub's volumes: compose 1.29's `run` links a host-network service to
# its dependencies and refuses.)
$DOCKER run --rm --network host -v "${PROJECT}_hub-data:/var/lib/mash" \
    -v "${PROJECT}_hub-secrets:/run/mash:ro" -v "$STATE/backups:/backups" \
    --entrypoint python "$MASH_IMAGE" /opt/mash-src/docker/tools/hub_backup.py backup /backups/hub --db /var/lib/mash/hub.sqlite3 \
    --keyring /run/mash/keys/keyring.json --keys /run/mash/keys >"$STATE/backup.log" 2>&1 ||
    { cat "$STATE/backup.log" >&2; die "the hub's backup failed"; }
grep -q '"hub.sqlite3"' "$STATE/backups/hub/manifest.json" || die "the backup has no database"
compose run --rm --no-deps -T -v "$STATE/backups:/out" --entrypoint python setup \
    /opt/mash-src/docker/tools/mash_setup.py issue mash-police /out/police-tls \
    >"$STATE/issue.log" 2>&1 || { cat "$STATE/issue.log" >&2; die "issuing a certificate failed"; }
[[ -s $STATE/backups/police-tls/client.pem ]] || die "no renewed certificate"
say "the hub backed up while running; a certificate renewed from the set-up's CA"

# The runbook's restore: the hub's container and volume destroyed, the backup restored into a
# new volume, the hub started on it; it still knows the earlier contacts and takes new ones.
compose rm -sf hub >/dev/null 2>&1
$DOCKER volume rm "${PROJECT}_hub-data" >/dev/null || die "could not remove the hub's volume"
$DOCKER run --rm --user 0 -v "${PROJECT}_hub-data:/var/lib/mash" -v "$STATE/backups:/backups" \
    --entrypoint sh "$MASH_IMAGE" -c 'python /opt/mash-src/docker/tools/hub_backup.py restore \
    /backups/hub --db /var/lib/mash/hub.sqlite3 && chown -R 10001:10001 /var/lib/mash' \
    >"$STATE/restore.log" 2>&1 || { cat "$STATE/restore.log" >&2; die "the restore failed"; }
compose up -d --no-build hub >"$STATE/up-hub.log" 2>&1 ||
    { cat "$STATE/up-hub.log" >&2; die "the restored hub did not start"; }
wait_healthy 120 hub housing
compose exec -T hub mash audit show "$ref2" >/dev/null || die "the restored hub lost $ref2"
ref4=$(submit red-baby-unexplained-bruising.json)
[[ $ref4 == MASH-* ]] || { cat "$STATE/submit.log" >&2; die "no reference from the restored hub"; }
read_packet "$ref4" police,health,education,housing || die "no packet from the restored hub for $ref4"
say "hub destroyed and restored from the backup: it knows $ref2 and answered $ref4"

say "removing every container and volume"
compose --profile tools down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
left=$($DOCKER ps -aq; $DOCKER volume ls -q)
[[ -z $left ]] || die "left after down: $left"
FINISHED=1
