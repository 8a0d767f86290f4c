"""tools/device/study.sh, the GPU study runner, on the CPU with stand-in runs: finished runs come back
in one archive ($OUT returns at most 8 files), and a run past the deadline is stopped, not waited for."""
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# a stand-in run: its results.json holds the data folder the line was given
FINISHES = ("mkdir -p output/study_gpu/shapes/{run} && echo \"$FRN_DET_DATASETS\" > output/study_gpu/shapes/{run}/results.json"
            " && echo '{{\"iteration\": 1}}' > output/study_gpu/shapes/{run}/metrics.json")


def test_finished_runs_come_back_in_one_archive_and_the_deadline_stops_the_rest(tmp_path):
    repo = tmp_path / "repo"
    (repo / "tools" / "device").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "device" / "study.sh", repo / "tools" / "device")
    # the wheels' installer is check.sh's business (tests/test_device_check.py); here a stand-in
    (repo / "tools" / "device" / "install_wheels.py").write_text("print('{}')\n")
    (repo / ".whl").mkdir()
    (repo / "output" / "device_data" / "frn_shapes").mkdir(parents=True)
    commands = repo / "commands.sh"
    commands.write_text("# a comment line is skipped\n"
                        + FINISHES.format(run="frn_8img_seed0") + "\n"
                        + FINISHES.format(run="gn_8img_seed0_lr0.1") + "\n"
                        + "mkdir -p output/study_gpu/shapes/bn_8img_seed0 && sleep 60\n"
                        + "sh -c 'exit 3'\n")
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(repo / "tools" / "device" / "study.sh"), str(commands), "4", "5"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 30, "the deadline did not stop the sleeping run"
    assert proc.returncode == 0, proc.stderr
    assert "rc=124" in proc.stdout and "2 finished runs" in proc.stdout
    assert "rc=3 sh -c" in proc.stdout  # each line's own exit status
    assert sorted(p.name for p in out.iterdir()) == ["logs.tgz", "study_gpu.tgz"]
    with tarfile.open(out / "study_gpu.tgz") as tar:
        names = sorted(tar.getnames())
        data = tar.extractfile("output/study_gpu/shapes/frn_8img_seed0/results.json").read().decode().strip()
    assert data == str(repo / "output" / "device_data" / "frn_shapes")
    assert names == [f"output/study_gpu/shapes/{run}/{f}" for run in ("frn_8img_seed0", "gn_8img_seed0_lr0.1")
                     for f in ("metrics.json", "results.json")]
    with tarfile.open(out / "logs.tgz") as tar:
        logs = [m for m in tar.getmembers() if m.isfile()]
    assert len(logs) == 4  # one per command line
