#!/usr/bin/env bash
# Issue 11's device check: benchmarks/gpu_suite.py on the lent GPU machine, in one call.
#
# Here (the development machine), once, from the project root:
#     bash ../shared/gpu/prepare.sh        # wheels into .whl/, Fashion-MNIST into .data/
# Then one device call (see /work/.library/device/README.md), from the same root:
#     run  command: bash benchmarks/gpu_check.sh     carry: [".whl", ".data"]     timeout_s: 480
# Extra arguments go to the suite, e.g. `bash benchmarks/gpu_check.sh --parts dp batched` to
# rerun part of it. The suite itself is cut at SUITE_TIMEOUT_S (default 390 s, under the call's
# limit); it writes its JSON after every section, so a cut run still returns what it measured.
#
# Into $OUT: gpu_suite.log (all it printed), gpu_suite.json (the figures), environment.txt.
set -uo pipefail

out=${OUT:-/tmp/gpu_check_out}
mkdir -p "$out"
cd "$(dirname "$0")/.."

if ! ls .whl/*.whl >/dev/null 2>&1; then
  echo "error: no wheels in .whl/: run bash ../shared/gpu/prepare.sh here first and carry .whl" \
    | tee "$out/gpu_suite.log"
  exit 2
fi
# The prefix prepare.sh prints: opacus and pydantic are not on that machine; torch is.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || { echo "error: installing .whl/ failed" | tee "$out/gpu_suite.log"; exit 2; }
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
# auto's measured mode choices go to a fresh file (that machine starts bare anyway).
export AUDITML_GRAD_SAMPLE_MODE_CACHE=/tmp/auditml_grad_sample_modes.json

# Fashion-MNIST where auditml looks by itself (the tutorial part runs in a scratch directory),
# and as ./data for the parts that read data_dir relative to the project root.
if [[ -d .data/fashion_mnist ]]; then
  mkdir -p /usr/share/datasets/fashion-mnist 2>/dev/null \
    && cp -n .data/fashion_mnist/* /usr/share/datasets/fashion-mnist/ 2>/dev/null
  [[ -e data ]] || ln -s .data data
else
  echo "warning: .data/fashion_mnist not carried: the batched and tutorial parts will fail" \
    | tee -a "$out/environment.txt"
fi

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c 'import sys, torch, opacus, pydantic; print(sys.version.split()[0], "torch",
torch.__version__, "cuda", torch.version.cuda, "opacus", opacus.__version__, "pydantic",
pydantic.__version__)' 2>&1
  nproc
} >>"$out/environment.txt"

timeout "${SUITE_TIMEOUT_S:-390}" python3 benchmarks/gpu_suite.py --device cuda \
  --json "$out/gpu_suite.json" "$@" 2>&1 | tee "$out/gpu_suite.log"
status=${PIPESTATUS[0]}
[[ $status -eq 124 ]] && echo "gpu_check: the suite ran past ${SUITE_TIMEOUT_S:-390}s and was cut" \
  | tee -a "$out/gpu_suite.log"
exit "$status"
