#!/usr/bin/env bash
# One-node SLURM for tests, on Debian without systemd (containers, CI).
#
#   bash tools/slurm/one_node.sh up       # install if needed, configure, start, wait until usable
#   bash tools/slurm/one_node.sh down     # stop slurmctld, slurmd and munged
#   bash tools/slurm/one_node.sh status   # sinfo/squeue, or "down"
#   bash tools/slurm/one_node.sh restart
#
# Must run as root. Config: /etc/slurm, logs: /var/log/slurm, state: /var/spool/slurm,
# pid files: /run/slurm. Debian 12 ships slurm-wlm 22.05.
set -euo pipefail

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
SPOOL_DIR=/var/spool/slurm
RUN_DIR=/run/slurm
MUNGE_RUN=/run/munge
CONF="$CONF_DIR/slurm.conf"
# Node name must equal what slurmd sees as its own short hostname.
NODE="$(hostname -s)"

log() { printf '[one_node] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Pid from a pid file, only if that process is alive.
live_pid() { local p; p="$(cat "$1" 2>/dev/null || true)"; [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && echo "$p"; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    log "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local pkgs=(slurm-wlm munge)
    # Retry once after refreshing the lists (fresh images often have none).
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null; }
}

write_conf() {
    # Real cores/sockets from slurmd itself; memory a little under MemTotal so slurmd
    # never reports less than configured (that would drain the node).
    local hw cpus sockets cores threads mem_mb
    hw="$(slurmd -C | head -1)"
    cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
    sockets="$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")"
    cores="$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")"
    threads="$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")"
    mem_mb=$(awk '/^MemTotal:/ {m=int($2/1024); print int(m*0.95)}' /proc/meminfo)
    [[ -n "$cpus" ]] || cpus="$(nproc)"

    local tmp; tmp="$(mktemp)"
    cat >"$tmp" <<EOF
# Written by tools/slurm/one_node.sh: single-node test cluster. Do not use in production.
ClusterName=onenode
# NodeAddr/controller address are pinned to loopback so the host name need not resolve.
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# Requeued jobs wait cred_expire seconds before they may start again (default 120).
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
SlurmctldPidFile=${RUN_DIR}/slurmctld.pid
SlurmdPidFile=${RUN_DIR}/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
StateSaveLocation=${SPOOL_DIR}/ctld
SlurmdSpoolDir=${SPOOL_DIR}/d
# No cgroups/systemd in containers: track processes via /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# CPUs are the consumable; memory is not, so jobs need no --mem.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Requeue/preemption tests: requeue allowed, quick kills, a node that comes back by itself.
JobRequeue=1
KillWait=5
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=30
ResumeTimeout=30
InactiveLimit=0
MinJobAge=300
Waittime=0
# Jobs in the 'urgent' partition requeue jobs of 'debug' when CPUs run out.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# A preempted job first gets its --signal (e.g. submitit's USR2), then GraceTime to checkpoint.
SlurmctldParameters=preempt_send_user_signal
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} Sockets=${sockets:-1} CoresPerSocket=${cores:-$cpus} ThreadsPerCore=${threads:-1} RealMemory=${mem_mb} State=UNKNOWN
# FORCE:4 lets up to 4 jobs share each CPU, so many 1-cpu test jobs run at once.
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4 PriorityTier=1 GraceTime=30
PartitionName=urgent Nodes=${NODE} Default=NO MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=10
EOF
    mkdir -p "$CONF_DIR"
    if cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"; return 0
    fi
    install -m 0644 "$tmp" "$CONF"; rm -f "$tmp"
    # slurmd insists on a cgroup.conf only with cgroup plugins; an empty one is harmless.
    [[ -f "$CONF_DIR/cgroup.conf" ]] || echo "# unused (proctrack/linuxproc, task/none)" >"$CONF_DIR/cgroup.conf"
    log "wrote $CONF"
    CONF_CHANGED=1
}

start_munge() {
    mkdir -p "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chown munge:munge "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chmod 0755 "$MUNGE_RUN"
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
    if live_pid "$MUNGE_RUN/munged.pid" >/dev/null; then return; fi
    # munged refuses to run as root with a munge-owned key: run it as its own user.
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged did not come up (see /var/log/munge/munged.log)"
}

start_slurm() {
    mkdir -p "$LOG_DIR" "$SPOOL_DIR/ctld" "$SPOOL_DIR/d" "$RUN_DIR"
    if ! live_pid "$RUN_DIR/slurmctld.pid" >/dev/null; then
        log "starting slurmctld"
        slurmctld
    fi
    if ! live_pid "$RUN_DIR/slurmd.pid" >/dev/null; then
        log "starting slurmd"
        slurmd
    fi
}

stop_slurm() {
    local p name
    for name in slurmd slurmctld; do
        p="$(live_pid "$RUN_DIR/$name.pid" || true)"
        [[ -n "$p" ]] || continue
        log "stopping $name ($p)"
        kill -TERM "$p"
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p"
    done
    # Running jobs (slurmstepd) survive, as on a real cluster; slurmd re-attaches on start.
    return 0
}

stop_munge() {
    local p; p="$(live_pid "$MUNGE_RUN/munged.pid" || true)"
    [[ -n "$p" ]] || return 0
    log "stopping munged ($p)"
    kill -TERM "$p"
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
}

wait_ready() {
    local state=""
    for _ in $(seq 60); do
        state="$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)"
        case "$state" in
            idle*|mixed*|allocated*) break ;;
            down*|drain*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 1
    done
    [[ "$state" =~ ^(idle|mixed|allocated) ]] || die "node state '$state' (see $LOG_DIR/slurmctld.log, $LOG_DIR/slurmd.log)"
    timeout 60 srun -N1 -n1 -t 1 -J one_node_check true \
        || die "srun smoke test failed (see $LOG_DIR/slurmd.log)"
}

status() {
    if ! scontrol ping >/dev/null 2>&1; then
        echo "SLURM is down (no slurmctld answering; logs in $LOG_DIR)"
        return 1
    fi
    sinfo
    squeue
    echo "config: $CONF  logs: $LOG_DIR/{slurmctld,slurmd}.log  state: $SPOOL_DIR"
}

up() {
    CONF_CHANGED=0
    install_packages
    write_conf
    start_munge
    if (( CONF_CHANGED )) && live_pid "$RUN_DIR/slurmctld.pid" >/dev/null; then
        log "config changed: restarting daemons"
        stop_slurm
    fi
    start_slurm
    wait_ready
    status
}

[[ $EUID -eq 0 ]] || die "run as root"
case "${1:-}" in
    up) up ;;
    down) stop_slurm; stop_munge; echo "SLURM stopped (logs in $LOG_DIR)" ;;
    restart) stop_slurm; up ;;
    status) status ;;
    *) echo "usage: $0 up|down|restart|status" >&2; exit 2 ;;
esac
