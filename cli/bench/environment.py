"""What each benchmarked system ran with: its environment's threading knobs, its threads, and the CPU.

A peer is measured as its users run it: started in the environment the bench was started in, less
every knob of ours (OpenMP waiting and thread counts, llama.cpp's variables, our model overrides),
so it runs with its own defaults. The results record, for each system, the knobs it did get.
"""

import os
import platform
from pathlib import Path

# Variables that change how a llama.cpp process threads, waits or loads; a peer gets none of ours.
KNOB_PREFIXES = ("OMP_", "GOMP_", "KMP_", "GGML_", "LLAMA_", "OPENBLAS_", "MKL_", "MODEL__")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def peer_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a peer starts in: the bench's own, less every threading or model knob."""
    source = os.environ if environ is None else environ
    return {key: value for key, value in source.items() if not key.startswith(KNOB_PREFIXES)}


def knobs(environ: dict[str, str]) -> dict[str, str]:
    """The threading and model knobs in an environment (what the results record per system)."""
    return {key: value for key, value in sorted(environ.items()) if key.startswith(KNOB_PREFIXES)}


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """The CPU's model name, its SIMD flags that decide llama.cpp's kernels, and the cores we may use."""
    model, flags = platform.processor() or platform.machine(), set()
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "flags": [flag for flag in CPU_FLAGS if flag in flags], "cores": cores}
