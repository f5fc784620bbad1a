#!/usr/bin/env bash
# Start a single-node Slurm on localhost (for tests and for trying profiles/slurm without a cluster):
# munged + MariaDB + slurmdbd + slurmctld + slurmd, run as root, all state under $LEAD_HSR_SLURM_STATE.
# Idempotent: a daemon whose pid file names a live process is left alone. Stop with scripts/slurm/stop.sh.
#
# Why slurmdbd: the Snakemake slurm executor polls job states with `sacct`, which needs accounting.
# Debian 12 only (apt-get installs slurm-wlm, munge, slurmdbd, mariadb-server when missing).
#
# Settings (environment):
#   LEAD_HSR_SLURM_STATE      state dir (configs, pid files, logs, spool, database)  [/tmp/lead-hsr-slurm]
#   LEAD_HSR_SLURM_PORT_BASE  slurmctld port; slurmd, slurmdbd, mysql use +1, +2, +3  [16817]
#   LEAD_HSR_SLURM_CPUS / _MEM_MB / _GPUS   what the fake node declares             [32 / 256000 / 4]
# Afterwards use the cluster with:  export SLURM_CONF=$LEAD_HSR_SLURM_STATE/etc/slurm.conf
set -euo pipefail

STATE=${LEAD_HSR_SLURM_STATE:-/tmp/lead-hsr-slurm}
PORT_BASE=${LEAD_HSR_SLURM_PORT_BASE:-16817}
CPUS=${LEAD_HSR_SLURM_CPUS:-32}
MEM_MB=${LEAD_HSR_SLURM_MEM_MB:-256000}
GPUS=${LEAD_HSR_SLURM_GPUS:-4}
CTLD_PORT=$PORT_BASE
SLURMD_PORT=$((PORT_BASE + 1))
DBD_PORT=$((PORT_BASE + 2))
MYSQL_PORT=$((PORT_BASE + 3))
TEMPLATES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/templates"
export SLURM_CONF="$STATE/etc/slurm.conf"
T0_NS=$(date +%s%N)

log() { echo "[slurm start $(date +%T)] $*"; }
die() { echo "[slurm start] ERROR: $*" >&2; exit 1; }
elapsed() { local ms=$((($(date +%s%N) - T0_NS) / 1000000)); printf "%d.%03d" $((ms / 1000)) $((ms % 1000)); }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and runs the Slurm daemons as root)"

# Is the process named in pid file $1 alive?
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Poll command "$2..." until it succeeds or $1 seconds pass.
wait_for() {
    local timeout=$1; shift
    local end=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.3
    done
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

render() {  # render template $1 into $2, replacing @NAME@ placeholders
    sed -e "s|@STATE@|$STATE|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
        -e "s|@DBD_PORT@|$DBD_PORT|g" -e "s|@MYSQL_PORT@|$MYSQL_PORT|g" -e "s|@CPUS@|$CPUS|g" \
        -e "s|@MEM_MB@|$MEM_MB|g" -e "s|@GPUS@|$GPUS|g" -e "s|@LAST_GPU@|$((GPUS - 1))|g" \
        "$TEMPLATES/$1" > "$2"
}

write_configs() {
    mkdir -p "$STATE"/{etc,run,log,spool/ctld,spool/slurmd,dev}
    chmod 755 "$STATE" "$STATE/run"
    render slurm.conf.in "$STATE/etc/slurm.conf"
    render gres.conf.in "$STATE/etc/gres.conf"
    render slurmdbd.conf.in "$STATE/etc/slurmdbd.conf"
    chmod 600 "$STATE/etc/slurmdbd.conf"  # slurmdbd refuses a readable config (it holds the DB password)
    for ((i = 0; i < GPUS; i++)); do
        [ -c "$STATE/dev/gpu$i" ] || mknod "$STATE/dev/gpu$i" c 1 3
    done
    if [ ! -s "$STATE/etc/munge.key" ]; then
        dd if=/dev/urandom of="$STATE/etc/munge.key" bs=1024 count=1 status=none
        chmod 400 "$STATE/etc/munge.key"
    fi
}

# Slurm 22.05 client commands talking to slurmdbd ignore AuthInfo=socket=..., so munged must use the
# default socket; refuse to take over a munged that we did not start (e.g. a real cluster's).
MUNGE_SOCKET=/run/munge/munge.socket.2
start_munge() {
    alive "$STATE/run/munged.pid" && return
    [ -S "$MUNGE_SOCKET" ] && munge -n >/dev/null 2>&1 && \
        die "a munged not started by this script already serves $MUNGE_SOCKET; stop it or use that machine's Slurm"
    log "starting munged"
    mkdir -p "$(dirname "$MUNGE_SOCKET")"
    munged --force --key-file="$STATE/etc/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" \
        --seed-file="$STATE/run/munged.seed"
    wait_for 10 munge -n || die "munged did not start, see $STATE/log/munged.log"
}

mysql_root() { mariadb --no-defaults -uroot -S "$STATE/run/mysqld.sock" "$@"; }

start_mariadb() {
    alive "$STATE/run/mariadbd.pid" && return
    if [ ! -d "$STATE/mysql/mysql" ]; then
        log "initialising the accounting database"
        mariadb-install-db --no-defaults --datadir="$STATE/mysql" --user=root \
            --auth-root-authentication-method=socket --skip-test-db > "$STATE/log/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed, see $STATE/log/mariadb-install.log"
    fi
    log "starting mariadbd on 127.0.0.1:$MYSQL_PORT"
    setsid mariadbd --no-defaults --datadir="$STATE/mysql" --user=root --bind-address=127.0.0.1 \
        --port="$MYSQL_PORT" --socket="$STATE/run/mysqld.sock" --pid-file="$STATE/run/mariadbd.pid" \
        --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 \
        < /dev/null > /dev/null 2>&1 &
    wait_for 60 mysql_root -e "SELECT 1" || die "mariadbd did not start, see $STATE/log/mariadb.log"
    mysql_root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
                   GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
    alive "$STATE/run/slurmdbd.pid" && return
    log "starting slurmdbd on 127.0.0.1:$DBD_PORT"
    slurmdbd
    wait_for 30 sacctmgr -n list cluster || die "slurmdbd did not answer, see $STATE/log/slurmdbd.log"
}

start_slurmctld() {
    alive "$STATE/run/slurmctld.pid" && return
    log "starting slurmctld on localhost:$CTLD_PORT"
    slurmctld -f "$SLURM_CONF"
    wait_for 30 scontrol ping || die "slurmctld did not answer, see $STATE/log/slurmctld.log"
}

start_slurmd() {
    alive "$STATE/run/slurmd.pid" && return
    log "starting slurmd -N localhost"
    slurmd -f "$SLURM_CONF" -N localhost
}

# The executor's job step runs a nested `srun` with every SLURM_* variable removed (SLURM_CONF too), so
# srun must find the config at the default path: link it there, but never replace a real cluster's file.
SYSTEM_CONF=/etc/slurm/slurm.conf
link_system_config() {
    if [ -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
        [ "$(readlink "$SYSTEM_CONF")" = "$SLURM_CONF" ] && return
        die "$SYSTEM_CONF exists and is not ours; this machine has its own Slurm, use that one"
    fi
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -s "$SLURM_CONF" "$SYSTEM_CONF"
}

node_state() { sinfo -h -N -n localhost -o %T 2>/dev/null; }
node_is_idle() { case "$(node_state)" in idle|mixed|allocated) return 0 ;; *) return 1 ;; esac; }
cluster_registered() { sacctmgr -n -P list cluster format=cluster | grep -qx leadhsr; }

wait_until_ready() {
    if ! wait_for 60 node_is_idle; then
        die "node state is '$(node_state)', not idle; see $STATE/log/slurmd.log and slurmctld.log"
    fi
    # slurmctld registers the cluster in slurmdbd on start; sacct needs it.
    wait_for 30 cluster_registered || die "cluster not registered in slurmdbd, see $STATE/log/slurmdbd.log"
}

install_packages
write_configs
link_system_config
start_munge
start_mariadb
start_slurmdbd
start_slurmctld
start_slurmd
wait_until_ready
log "ready in $(elapsed) s: node localhost $(node_state), $CPUS CPUs, $MEM_MB MB, $GPUS fake GPUs"
echo "export SLURM_CONF=$SLURM_CONF"
