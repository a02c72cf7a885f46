"""The thread topology: single-thread pipelines, one per core, for small models; overrides honoured."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.topology import ENV_PIPELINES, ENV_THREADS, SPLIT_MODEL_BYTES, choose_topology, topology_for_pack

SFACE_PACK = 39 * 2**20


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV_THREADS, raising=False)
    monkeypatch.delenv(ENV_PIPELINES, raising=False)


@pytest.mark.parametrize("cores", [1, 2, 8, 16])
def test_small_models_run_one_single_thread_pipeline_per_core(cores):
    topology = choose_topology(SFACE_PACK, cores=cores)
    assert (topology.threads, topology.pipelines) == (1, cores)


def test_large_models_split_over_two_threads_only_on_four_cores_or_more():
    large = choose_topology(SPLIT_MODEL_BYTES, cores=8)
    assert (large.threads, large.pipelines) == (2, 4)
    assert choose_topology(SPLIT_MODEL_BYTES, cores=2).threads == 1
    assert choose_topology(SPLIT_MODEL_BYTES - 1, cores=8).threads == 1


def test_environment_and_arguments_override(monkeypatch):
    monkeypatch.setenv(ENV_PIPELINES, "3")
    assert choose_topology(SFACE_PACK, cores=6).pipelines == 3
    assert choose_topology(SFACE_PACK, cores=6).threads == 2  # the cores are still all used
    monkeypatch.setenv(ENV_THREADS, "4")
    both = choose_topology(SFACE_PACK, cores=8)
    assert (both.threads, both.pipelines) == (4, 3)
    assert choose_topology(SFACE_PACK, cores=8, threads=1, pipelines=5).pipelines == 5
    monkeypatch.setenv(ENV_THREADS, "zero")
    with pytest.raises(ValueError, match=ENV_THREADS):
        choose_topology(SFACE_PACK, cores=8)


def test_default_pack_topology_and_the_server_engines_use_it(default_pack: Path):
    from app.metrics import Metrics
    from app.services.engines import Engines
    from app.settings import Settings
    from models.topology import available_cores

    topology = topology_for_pack(default_pack)
    assert topology.threads == 1 and topology.pipelines == available_cores()
    engines = Engines(Settings(packs=[str(default_pack)], providers=["cpu"]), Metrics())
    try:
        engines.load()
        engine = engines.get()
        assert engines.executor._max_workers == topology.pipelines
        assert engine.batcher.workers == topology.pipelines
        for session in (engine.pipeline.detector.session, engine.pipeline.embedder.session):
            assert session.get_session_options().intra_op_num_threads == 1
    finally:
        engines.executor.shutdown()
    explicit = Engines(Settings(packs=[str(default_pack)], providers=["cpu"], detect_threads=3), Metrics())
    assert explicit.executor._max_workers == 3
    explicit.executor.shutdown()
