"""Whether a live SLURM answers here (e.g. tools/slurm/one_node.sh up), for the tests that need one."""
import shutil
import subprocess


def _slurm_down_reason():
    for tool in ("sbatch", "sinfo", "scontrol"):
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (start one with: bash tools/slurm/one_node.sh up)"
    # `scontrol ping` answers at once; `sinfo` alone spends ~9 s retrying a dead controller.
    for cmd in (["scontrol", "ping"], ["sinfo", "-h"]):
        try:
            rc = subprocess.run(cmd, capture_output=True, timeout=15).returncode
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` did not answer within 15 s"
        if rc != 0:
            return f"`{' '.join(cmd)}` failed (rc {rc}): slurmctld is down (bash tools/slurm/one_node.sh up)"
    return None


DOWN = _slurm_down_reason()  # None where SLURM answers, else why the tests that need it are skipped
