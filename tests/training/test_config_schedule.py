"""Config validation, overrides, LR schedules and the resumable data order."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError, ScheduleConfig, apply_overrides, load_config, validate_config
from training.sampler import ResumableBatchSampler, flip_mask
from training.schedule import lr_multiplier

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_repository_configs_validate(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.backbone and cfg.loss["name"]


def test_ms1mv3_config_mirrors_arcface_torch() -> None:
    cfg = load_config(REPO / "configs" / "ms1mv3_r50.yaml")
    assert (cfg.backbone, cfg.embedding_size, cfg.batch_size, cfg.epochs) == ("iresnet50", 512, 128, 20)
    assert cfg.loss == {"name": "arcface", "s": 64, "m": 0.5}
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (0.1, 0.9, 5e-4)
    assert (cfg.schedule.name, cfg.schedule.power, cfg.schedule.warmup) == ("poly", 1.0, 0)
    assert (cfg.precision, cfg.grad_clip, cfg.partial_fc.enabled, cfg.partial_fc.sample_rate) == (
        "fp16",
        5.0,
        True,
        1.0,
    )
    assert cfg.data.kind == "recordio" and cfg.data.idx.endswith("train.idx")


def test_overrides_are_parsed_as_yaml_scalars(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("backbone: iresnet18\nloss: {name: cosface}\ndata: {root: /x}\nsteps: 10\n")
    cfg = load_config(path, ["optimizer.lr=0.05", "loss.m=0.4", "precision=bf16", "eval.every_steps=7"])
    assert cfg.optimizer.lr == 0.05 and cfg.loss["m"] == 0.4 and cfg.precision == "bf16"
    assert cfg.eval.every_steps == 7
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["optimizer.lr"])


def test_python_config(tmp_path: Path) -> None:
    path = tmp_path / "exp.py"
    path.write_text(
        "CONFIG = dict(backbone='mobilefacenet', loss={'name': 'arcface'}, data={'root': '/d'}, epochs=2)\n"
    )
    assert load_config(path).epochs == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"loss": {"name": "arcface"}, "data": {"root": "/d"}, "steps": 1}, "backbone"),
        ({"backbone": "x", "loss": {"s": 64}, "data": {"root": "/d"}, "steps": 1}, "needs a 'name'"),
        ({"backbone": "x", "loss": {"name": "a"}, "data": {"root": "/d"}}, "'epochs' or 'steps'"),
        ({"backbone": "x", "loss": {"name": "a"}, "data": {"kind": "folder"}, "steps": 1}, "data.root"),
        ({"backbone": "x", "loss": {"name": "a"}, "data": {"root": "/d"}, "steps": 1, "lr": 1}, "lr"),
        (
            {
                "backbone": "x",
                "loss": {"name": "a"},
                "data": {"root": "/d"},
                "steps": 1,
                "optimizer": {"name": "adam"},
            },
            "optimizer.name",
        ),
        (
            {
                "backbone": "x",
                "loss": {"name": "a"},
                "data": {"root": "/d"},
                "steps": 1,
                "schedule": {"milestones": [5, 2]},
            },
            "increasing",
        ),
    ],
)
def test_invalid_configs_name_the_problem(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        validate_config(raw, source="exp.yaml")
    assert info.value.code == "bad_config" and "exp.yaml" in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.code == "config_not_found"


def test_step_schedule_decays_at_milestones_with_warmup() -> None:
    f = lr_multiplier(ScheduleConfig(name="step", unit="epoch", milestones=[1, 2], warmup=0.5), 100, 4)
    assert [round(f(s), 6) for s in range(10)] == [0.5, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01]


def test_poly_schedule_is_linear_after_warmup() -> None:
    f = lr_multiplier(
        ScheduleConfig(name="poly", unit="step", warmup=2, power=1.0), total_steps=6, steps_per_epoch=3
    )
    assert [round(f(s), 6) for s in range(6)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]


def test_sampler_splits_the_global_batch_and_resumes() -> None:
    single = list(ResumableBatchSampler(40, 8, seed=5))
    ranks = [ResumableBatchSampler(40, 4, rank=r, world_size=2, seed=5) for r in range(2)]
    split = list(zip(*ranks, strict=True))
    assert [a + b for a, b in split] == single
    resumed = ResumableBatchSampler(40, 8, seed=5)
    resumed.set_epoch(0, start_batch=3)
    assert list(resumed) == single[3:] and len(resumed) == 2
    resumed.set_epoch(1)
    assert list(resumed) != single
    assert flip_mask(1, 7, 8, 0, 8).tolist()[4:] == flip_mask(1, 7, 8, 1, 4).tolist()
