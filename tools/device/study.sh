#!/usr/bin/env bash
# Study runs on a lent GPU: the tools/batch_study.py lines of a commands file, PARALLEL at a
# time on the one GPU (a run of the R18 study model leaves most of an H100/H200 idle). Installs .whl's wheels
# first, as check.sh does; stops every run at DEADLINE seconds so that what finished still comes back. The
# runs' results, metrics, configs and logs come back as $OUT/study_gpu.tgz and $OUT/logs.tgz (unpack
# study_gpu.tgz here and copy each run folder to benchmarks/study_gpu/). Carry .whl and the data folder.
#   bash tools/device/wheels.sh  # here, once: .whl (9 MiB)
#   # here: the data the lines read, e.g. the photo-like look (51 MB; carry takes 64 MiB in all)
#   d=output/device_data/frn_shapes; mkdir -p $d/annotations; cp -r $FRN_DET_DATASETS/{train,val} $d/
#   cp $FRN_DET_DATASETS/annotations/*_{train,val}.json $d/annotations/
#   run: bash tools/device/study.sh benchmarks/study_gpu/commands.sh [PARALLEL [DEADLINE_S [DATA]]]
#        carry [".whl", "output/device_data"], timeout_s at least DEADLINE_S + 60 (wheels, archives);
#        DATA (relative to the repo root) defaults to output/device_data/frn_shapes. The lines must write
#        under output/study_gpu.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
commands="$(realpath "$1")" || exit 2
cd "$root"
parallel="${2:-8}" deadline="${3:-480}" data="${4:-output/device_data/frn_shapes}"
out="${OUT:-output/device_study}"
logs="$(mktemp -d)"  # per-line logs; they return inside logs.tgz ($OUT takes 8 files)
mkdir -p "$out"
[ -d "$data" ] || { echo "device study: no $data; carry it (a copy of \$FRN_DET_DATASETS)" >&2; exit 2; }
data="$(cd "$data" && pwd)"
wheels="$(mktemp -d)"
python3 tools/device/install_wheels.py .whl "$wheels" || exit 2
# the repo first: detectron2's wheel brings a top-level `tools` package of its own
export PYTHONPATH="$root:$wheels" FRN_DET_DATASETS="$data" PYTHONUNBUFFERED=1
# the runs share 16 cores: one thread each, and inductor compiles in-process instead of a pool per run
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TORCHINDUCTOR_COMPILE_THREADS=1

copy_back() {  # $OUT returns at most 8 files, 2 folders down: one archive
  find output/study_gpu \( -name results.json -o -name metrics.json -o -name config.yaml -o -name log.txt \) \
    -print0 2>/dev/null | tar czf "$out/study_gpu.tgz" --null -T -
  find output/study_gpu -name study.log -print0 2>/dev/null | tar czf "$out/logs.tgz" --null -T - -C "$logs" .
}
progress() {  # one line per run every 30 s: iterations done
  trap 'kill $nap 2>/dev/null; exit' TERM  # the sleep would hold the caller's stdout open
  while sleep 30 & nap=$!; wait $nap; do
    line="$(date +%T)"
    for m in $(find output/study_gpu -name metrics.json 2>/dev/null); do
      line+=" $(dirname "${m#output/study_gpu/}")@$(tail -n 1 "$m" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("iteration"))' 2>/dev/null)"
    done
    echo "$line"
  done
}
progress & progress_pid=$!
trap 'kill "$progress_pid" 2>/dev/null; copy_back' EXIT  # also when stopped by a signal other than KILL
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
grep -v -e '^#' -e '^$' "$commands" | timeout --kill-after=10 "$deadline" \
  xargs -d '\n' -n 1 -P "$parallel" bash -c 'log="'"$logs"'/$(echo "$0" | md5sum | cut -c1-8).log"; echo "$0" > "$log"; eval "$0" >> "$log" 2>&1; r=$?; echo "$(date +%T) rc=$r $0"; exit $r'
rc=$?
kill "$progress_pid" 2>/dev/null
copy_back
trap - EXIT
nvidia-smi --query-gpu=memory.used --format=csv,noheader
echo "device study: rc=$rc (124: stopped at the ${deadline} s deadline; 123: a line failed); $(tar tzf "$out/study_gpu.tgz" 2>/dev/null | grep -c "img_seed.*/results.json") finished runs in $out/study_gpu.tgz"
