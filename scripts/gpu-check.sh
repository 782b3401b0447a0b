#!/usr/bin/env bash
# The GPU check of the nvjpeg backend (spec/backends.md BKD-042, issue 4), as one
# short command for a CUDA machine that has no network: its own python3 must
# already hold torch, torchvision, numpy, numba, Cython, Pillow, psutil, pytest and
# pytest-benchmark (the project's device image does).
#
#   here, once per session:   bash scripts/gpu-check.sh --prepare
#                             (copies ../shared's photos and golden files into
#                              .gpu/, which git ignores through .git/info/exclude)
#   there (device tool):      run command="bash scripts/gpu-check.sh" carry=[".gpu"]
#
# It installs ffcvx with the pillow and nvjpeg backends (turbojpeg too where the
# libjpeg headers exist), then runs, in this order, each step's output in $OUT:
#   1. ffcvx conformance --backend nvjpeg -v          conformance.txt
#   2. the CUDA tests of the backend and the batch path    pytest.txt
#   3. scripts/gpu_check.py: measured tolerance margins    gpu_check.json
#   4. benchmarks/test_gpu_speed.py: img/s to the GPU       bench.txt
# and ends with one line per step (its exit status); exits with the number of
# steps that failed.
set -u
cd "$(dirname "$0")/.."

if [ "${1:-}" = --prepare ]; then
    shared=$(cd .. && pwd)/shared
    [ -d "$shared/data/photos" ] || { echo "no $shared/data/photos" >&2; exit 1; }
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    rm -rf .gpu && mkdir -p .gpu/shared/data
    cp -r "$shared/data/photos" .gpu/shared/data/
    [ -d "$shared/golden" ] && cp -r "$shared/golden" .gpu/shared/
    du -sh .gpu
    exit 0
fi

export PYTHONUNBUFFERED=1
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
py=python3
results=()

nvidia-smi -L
$py -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
'cuda', torch.cuda.is_available())"

# The tests and scripts find the shared data through ffcvx.testing.shared_dir():
# $FFCVX_SHARED, else ../shared beside the repository.
if [ -z "${FFCVX_SHARED:-}" ] && [ ! -d ../shared/data/photos ]; then
    [ -d .gpu/shared ] || { echo "no .gpu/shared: run 'bash scripts/gpu-check.sh --prepare' here and carry .gpu" >&2; exit 1; }
    export FFCVX_SHARED="$PWD/.gpu/shared"
fi

packages=(-e . -e backends/pillow -e backends/nvjpeg)
[ -f /usr/include/jpeglib.h ] && packages+=(-e backends/turbojpeg)
$py -m pip install -q --no-index --no-build-isolation --no-deps "${packages[@]}" || {
    echo "install failed" >&2; exit 1; }

step() {  # step NAME LOGFILE COMMAND...: run, keep its output, remember its status
    local name=$1 log=$2
    shift 2
    echo "=== $name"
    "$@" 2>&1 | tee "$out/$log"
    results+=("$name: exit ${PIPESTATUS[0]}")
}

step conformance conformance.txt $py -m ffcvx conformance --backend nvjpeg -v
step cuda-tests pytest.txt $py -m pytest -q -p no:cacheprovider -rs backends/nvjpeg/tests tests/decode/test_batch_backend.py
step tolerances gpu_check.log $py scripts/gpu_check.py "$out/gpu_check.json"
step speed bench.txt $py -m pytest -q -p no:cacheprovider benchmarks/test_gpu_speed.py --benchmark-only -s

echo "=== summary"
printf '%s\n' "${results[@]}"
failed=$(printf '%s\n' "${results[@]}" | grep -cv ': exit 0$')
exit "$failed"
