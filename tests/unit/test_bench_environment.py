"""The benchmark runs each peer as its users run it: none of our threading or model knobs reach it,
and the results say what each system ran with; our worker waits with a bounded spin unless told."""

import pytest

from cli.bench.environment import cpu_description, knobs, peer_environment
from runtimes import openmp


def test_a_peer_gets_the_environment_without_any_of_our_knobs() -> None:
    ours = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "OMP_WAIT_POLICY": "PASSIVE",
        "GOMP_SPINCOUNT": "30000",
        "OMP_NUM_THREADS": "2",
        "MODEL__LUMIMAID__PARAMS__REPACK": "false",
        "GGML_SCHED_MAX_COPIES": "1",
    }
    assert peer_environment(ours) == {"PATH": "/usr/bin", "HOME": "/root"}
    assert knobs(ours) == {key: value for key, value in ours.items() if key not in ("PATH", "HOME")}


def test_the_cpu_record_names_the_model_and_the_kernel_flags(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Example Xeon\nflags\t\t: fpu sse avx2 avx512f avx512_vnni amx_tile\n"
    )
    described = cpu_description(cpuinfo)
    assert described["model"] == "Example Xeon"
    assert described["flags"] == ["avx2", "avx512f", "avx512_vnni", "amx_tile"]
    assert described["cores"] >= 1


def test_the_worker_spins_briefly_unless_the_environment_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert openmp.spin_briefly() == {
        "OMP_WAIT_POLICY": "ACTIVE",
        "GOMP_SPINCOUNT": str(openmp.DEFAULT_SPIN_COUNT),
    }

    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # an operator's choice is kept as it is
    assert openmp.spin_briefly() == {"OMP_WAIT_POLICY": "PASSIVE"}
