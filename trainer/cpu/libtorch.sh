#!/usr/bin/env bash
# Assemble the CPU part of LibTorch 2.9.0 (what `burn-tch` 0.21 / `tch` 0.22 link against) from
# the PyPI wheels, for `cargo build -p trainer --features tch` on a machine that reaches only the
# package registries (LibTorch's own download site is out of reach).
# Run it on the x86-64 Linux machine that builds the trainer: pip picks the wheels for its Python.
#
#   trainer/cpu/libtorch.sh DIR
#   export LIBTORCH=DIR LIBTORCH_CXX11_ABI=1 LD_LIBRARY_PATH=DIR/lib
#   cargo build --release -p trainer --features tch
#
# PyPI's torch wheel for x86-64 Linux is the CUDA build. Only its CPU libraries are kept:
# libtorch_cpu, libc10 and its OpenMP; libtorch_cpu also names the CUDA runtime and CUPTI (its
# profiler), which come from their two small wheels and load fine without a GPU. libtorch.so,
# which would pull in the 1 GB CUDA kernels, is replaced by an empty library of that name.
set -euo pipefail
DIR=${1:?usage: libtorch.sh DIR}
TORCH=2.9.0
CUDA_RT=12.8.90
mkdir -p "$DIR/lib"
DIR=$(cd "$DIR" && pwd)
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: \
  "torch==$TORCH" "nvidia-cuda-runtime-cu12==$CUDA_RT" "nvidia-cuda-cupti-cu12==$CUDA_RT" -d "$wheels"
cd "$wheels"
unzip -q torch-"$TORCH"-*.whl 'torch/include/*' torch/lib/libtorch_cpu.so torch/lib/libc10.so torch/lib/libgomp.so.1
for w in nvidia_cuda_runtime_cu12-*.whl nvidia_cuda_cupti_cu12-*.whl; do unzip -q "$w" 'nvidia/*/lib/*'; done
rm -rf "$DIR/include"
mv torch/include "$DIR/include"
mv torch/lib/* nvidia/cuda_runtime/lib/libcudart.so.12 nvidia/cuda_cupti/lib/libcupti.so.12 "$DIR/lib/"
ln -sf libgomp.so.1 "$DIR/lib/libgomp.so"
cc -shared -o "$DIR/lib/libtorch.so" -x c /dev/null
echo "LibTorch $TORCH (CPU) in $DIR: export LIBTORCH=$DIR LIBTORCH_CXX11_ABI=1 LD_LIBRARY_PATH=$DIR/lib"
