"""A live SLURM (e.g. tools/slurm/one_node.sh up) runs batch jobs; skipped where none answers."""
import subprocess

import pytest

from slurm_up import DOWN

pytestmark = pytest.mark.skipif(DOWN is not None, reason=str(DOWN))


def test_sbatch_job_runs_two_tasks_and_writes_its_output(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "srun bash -c 'echo \"$SLURM_PROCID/$SLURM_NTASKS $SLURM_NODEID $SLURM_JOB_NODELIST\"' "
        f"> {tmp_path}/out.txt\n"
    )
    done = subprocess.run(
        ["sbatch", "--wait", "--parsable", "-J", "pytest_slurm", "-N1", "--ntasks-per-node=2",
         "-t", "1", "-o", str(tmp_path / "slurm-%j.out"), str(script)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = sorted((tmp_path / "out.txt").read_text().split("\n")[:-1])
    assert [line.split()[0] for line in lines] == ["0/2", "1/2"]
    assert all(line.split()[1] == "0" and line.split()[2] for line in lines)
