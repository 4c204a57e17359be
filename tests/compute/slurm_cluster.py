"""A throw-away single-node Slurm cluster for tests (Debian's slurm-wlm and munge).

``start_cluster`` installs the packages when they are missing (root + apt only), starts munged if
no munge daemon answers, writes a ``slurm.conf`` with this host as controller and only compute
node (2 CPUs, free ports, state and logs under a temporary folder), starts ``slurmctld`` and
``slurmd`` and waits until ``sinfo`` shows the node idle. Client commands find the cluster
through ``SLURM_CONF``; nothing under ``/etc/slurm`` is touched. ``SlurmCluster.stop`` cancels
the jobs left and stops exactly the daemons it started, by process id.

Anything that prevents a working cluster raises :class:`SlurmUnavailable` with the reason, which
the fixture turns into a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
MUNGE_KEY = Path("/etc/munge/munge.key")


class SlurmUnavailable(RuntimeError):
    """A local Slurm cluster cannot be installed or started here (the message says why)."""


@dataclass
class SlurmCluster:
    """A running single-node cluster; ``env`` is the environment its clients need."""

    root: Path
    conf: Path
    node: str
    env: dict[str, str]
    install_s: float = 0.0
    start_s: float = 0.0
    _daemons: list[subprocess.Popen] = field(default_factory=list)
    _munged_pid: int | None = None

    def run(self, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
        """Run a Slurm client command (``sinfo``, ``squeue`` ...) against this cluster."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout_s)

    def stop(self) -> None:
        """Cancel remaining jobs, then stop the daemons this cluster started (by pid)."""
        if any(p.poll() is None for p in self._daemons):
            queue = self.run("squeue", "--noheader", "--format=%A")
            ids = sorted(set(queue.stdout.split()))
            if ids:
                self.run("scancel", *ids)
                _wait_until(lambda: not self.run("squeue", "--noheader").stdout.strip(), 20)
        for proc in reversed(self._daemons):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._daemons.clear()
        if self._munged_pid is not None:
            try:
                os.kill(self._munged_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self._munged_pid = None


def ensure_installed(timeout_s: float = 900) -> float:
    """Install slurm-wlm and munge with apt when missing; return the seconds it took."""
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return 0.0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlurmUnavailable("slurm-wlm/munge are not installed and cannot be installed here "
                               "(needs root and apt-get): apt-get install slurm-wlm munge")
    t0 = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        try:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise SlurmUnavailable(f"{' '.join(cmd)} took over {timeout_s:.0f} s") from exc
        if out.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")
    return time.monotonic() - t0


def start_cluster(root: Path, cpus: int = 2, timeout_s: float = 60) -> SlurmCluster:
    """Install if needed, then start munge, slurmctld and slurmd; wait for an idle node."""
    install_s = ensure_installed()
    if os.geteuid() != 0:
        raise SlurmUnavailable("starting slurmd needs root")
    t0 = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    node = socket.gethostname().split(".")[0]
    conf = _write_conf(root, node, cpus)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(root, conf, node, env, install_s=install_s)
    try:
        cluster._munged_pid = _ensure_munge()
        for daemon in ("slurmctld", "slurmd"):
            log = open(root / f"{daemon}.out", "wb")
            cluster._daemons.append(subprocess.Popen(
                [daemon, "-D", "-f", str(conf)], env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
            log.close()
        if not _wait_until(lambda: _node_state(cluster) == "idle", timeout_s):
            raise SlurmUnavailable(
                f"node {node} not idle after {timeout_s:.0f} s (state {_node_state(cluster)!r}); "
                f"see {root}/slurmctld.log and {root}/slurmd.log")
    except BaseException:
        cluster.stop()
        raise
    cluster.start_s = time.monotonic() - t0
    return cluster


def _node_state(cluster: SlurmCluster) -> str:
    try:
        out = cluster.run("sinfo", "--noheader", "--format=%T", timeout_s=10)
    except subprocess.TimeoutExpired:
        return "no answer"
    return out.stdout.strip() if out.returncode == 0 else "no answer"


def _ensure_munge() -> int | None:
    """Start munged unless one answers already; return the pid of the one started."""
    if _munge_works():
        return None
    if not MUNGE_KEY.is_file():
        raise SlurmUnavailable(f"{MUNGE_KEY} missing: create it with mungekey")
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    out = subprocess.run(["runuser", "-u", "munge", "--", "munged"], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0 or not _wait_until(_munge_works, 10):
        raise SlurmUnavailable(f"munged did not start: {out.stderr.strip()[-300:]}")
    pid_file = run_dir / "munged.pid"
    return int(pid_file.read_text()) if pid_file.is_file() else None


def _munge_works() -> bool:
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if cred.returncode != 0:
            return False
        return subprocess.run(["unmunge"], input=cred.stdout, capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _write_conf(root: Path, node: str, cpus: int) -> Path:
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    ctld_port, slurmd_port = _free_port(), _free_port()
    conf = root / "slurm.conf"
    conf.write_text(f"""\
ClusterName=immunodigtest
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb // 2} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(condition, timeout_s: float, step_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()
