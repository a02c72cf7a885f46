"""The training loop: data-parallel (DDP) on CPU or GPU, mixed precision, exact resume, periodic
evaluation, checkpoints. One process runs the same code with world size 1."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.errors import MarginFaceError
from training.build import (
    FaceModel,
    autocast_dtype,
    build_backbone_from_config,
    build_head,
    build_optimizer,
)
from training.checkpoint import atomic_save, capture_rng, load_checkpoint, restore_rng, save_step_checkpoint
from training.config import TrainConfig
from training.data_setup import build_dataset, dataset_num_classes
from training.distributed import DistInfo, barrier, broadcast_flag, init_distributed
from training.finetune.setup import FineTuning
from training.run_log import MetricsLog
from training.sampler import ResumableBatchSampler, flip_mask
from training.schedule import build_scheduler, lr_multiplier


class TrainingError(MarginFaceError):
    """Training cannot go on (``non_finite_loss``, ``resume_mismatch``)."""

    code = "training_failed"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """``Trainer(cfg, out_dir).fit()`` trains and returns a summary; ``resume`` is a checkpoint path."""

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path,
        resume: str | Path | None = None,
        progress: bool = True,
        dist_info: DistInfo | None = None,
    ):
        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.info = dist_info or init_distributed(cfg.device)
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = self.info.device
        self.progress = progress and self.info.is_main
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        seed_everything(cfg.seed)

        self.dataset = build_dataset(cfg)
        self.num_classes = cfg.data.num_classes or dataset_num_classes(self.dataset)
        self.sampler = ResumableBatchSampler(
            len(self.dataset), cfg.batch_size, self.info.rank, self.info.world_size, cfg.seed
        )
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        self.total_steps = cfg.steps or (cfg.epochs or 1) * self.steps_per_epoch

        backbone = build_backbone_from_config(cfg)
        self.finetune = FineTuning(cfg.finetune, cfg.backbone) if cfg.finetune else None
        if self.finetune is not None:  # issue 13: start from a real model
            self.finetune.init_backbone(backbone)
        backbone = backbone.to(self.device)
        if cfg.channels_last and self.device.type == "cuda":
            backbone = backbone.to(memory_format=torch.channels_last)
        head = build_head(
            cfg, self.num_classes, dist.group.WORLD if self.info.enabled else None, self.info.enabled
        ).to(self.device)
        self.backbone, self.head = backbone, head
        amp_dtype = autocast_dtype(cfg.precision, self.device)
        if self.finetune is not None:
            if self.info.enabled:
                raise TrainingError("fine-tuning runs in one process (no DDP yet)", "finetune_single_process")
            if resume is None:
                self.finetune.init_centres(backbone, head, self.dataset, self.device)
            self.model = self.finetune.model(backbone, head, amp_dtype)
        elif self.info.enabled and not cfg.partial_fc.enabled:
            # replicated head: one DDP over backbone + head averages both gradients
            self.model: torch.nn.Module = DDP(FaceModel(backbone, head, amp_dtype), **self._ddp_kwargs())
        elif self.info.enabled:
            self.model = FaceModel(DDP(backbone, **self._ddp_kwargs()), head, amp_dtype)
        else:
            self.model = FaceModel(backbone, head, amp_dtype)
        seed_everything(cfg.seed + 1000 * self.info.rank)  # per-rank dropout / negative sampling

        params = [p for p in [*backbone.parameters(), *head.parameters()] if p.requires_grad]
        if self.finetune is not None:
            params = self.finetune.param_groups(backbone, head)
        self.optimizer = build_optimizer(cfg, params)
        if self.finetune is not None:
            factor = lr_multiplier(cfg.schedule, self.total_steps, self.steps_per_epoch)
            self.scheduler = self.finetune.scheduler(self.optimizer, factor)
        else:
            self.scheduler = build_scheduler(
                self.optimizer, cfg.schedule, self.total_steps, self.steps_per_epoch
            )
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self.step, self.best_metric, self.last_eval = 0, None, {}
        self._evaluator = None
        self.log = MetricsLog(self.out_dir, enabled=self.info.is_main)
        if resume is not None:
            self._load(load_checkpoint(resume))

    def _ddp_kwargs(self) -> dict[str, Any]:
        ids = [self.device.index] if self.device.type == "cuda" else None
        # buffers (BatchNorm statistics, loss statistics of a replicated head) follow rank 0
        return {"device_ids": ids}

    # ----------------------------------------------------------------------------------------- loop
    def fit(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train to the configured end (or, with ``stop_after``, checkpoint and stop at that step, as an
        interrupted run would)."""
        cfg, start_time = self.cfg, time.monotonic()
        end_step = min(self.total_steps, stop_after) if stop_after is not None else self.total_steps
        loader = DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            num_workers=cfg.data.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            generator=torch.Generator(),  # keep the global RNG untouched by loader start-up
        )
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not self.progress,
            unit="step",
            dynamic_ncols=True,
            desc=cfg.name,
        )
        window_loss, window_n, window_t = torch.zeros((), device=self.device), 0, time.monotonic()
        stopped_early = False
        self.model.train()
        while self.step < end_step and not stopped_early:
            epoch, batch_in_epoch = divmod(self.step, self.steps_per_epoch)
            self.sampler.set_epoch(epoch, batch_in_epoch)
            for images, labels in loader:
                loss = self._train_step(images, labels)
                self.step += 1
                window_loss += loss.detach()
                window_n += 1
                bar.update(1)
                out_of_time = cfg.max_minutes is not None and (
                    time.monotonic() - start_time > cfg.max_minutes * 60
                )
                if cfg.max_minutes is not None:
                    out_of_time = broadcast_flag(self.info, out_of_time)
                at_end = self.step >= end_step
                if self.step % cfg.log_every == 0 or at_end or out_of_time:
                    window_loss, window_n, window_t = self._log_window(bar, window_loss, window_n, window_t)
                if cfg.eval.sets and (self.step % cfg.eval.every_steps == 0 or self.step == self.total_steps):
                    self._evaluate()
                if self.step % cfg.checkpoint.every_steps == 0 or at_end or out_of_time:
                    self.save()
                if at_end or out_of_time:
                    stopped_early = out_of_time and self.step < self.total_steps
                    break
        bar.close()
        if stopped_early and cfg.eval.sets and self.step % cfg.eval.every_steps:
            self._evaluate()
            self.save()
        if self.finetune is not None and self.info.is_main and self.step >= self.total_steps:
            self.finetune.write_interpolated(self._state(), self.out_dir)  # WiSE-FT, when configured
        self.log.close()
        return {
            "step": self.step,
            "eval": self.last_eval,
            "best_metric": self.best_metric,
            "stopped_early": stopped_early,
            "minutes": (time.monotonic() - start_time) / 60,
        }

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if cfg.data.flip:
            mask = flip_mask(cfg.seed, self.step, self.sampler.global_batch, self.info.rank, cfg.batch_size)
            mask = mask.to(self.device)
            images = torch.where(mask[:, None, None, None], images.flip(-1), images)
        if cfg.channels_last and self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        loss = self.model(images, labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if cfg.grad_clip:
                self.scaler.unscale_(self.optimizer)
                self._clip_gradients(cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if cfg.grad_clip:
                self._clip_gradients(cfg.grad_clip)
            self.optimizer.step()
        self.scheduler.step()
        return loss

    def _params(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _clip_gradients(self, max_norm: float) -> None:
        """Clip by the global gradient norm. With sharded Partial FC the norm includes every rank's
        shard (all-reduced), so all ranks, and a 1-process run, apply the same factor."""
        if not (self.info.enabled and self.cfg.partial_fc.enabled):
            torch.nn.utils.clip_grad_norm_(self._params(), max_norm)
            return
        replicated = [p.grad for p in self.backbone.parameters() if p.grad is not None]
        sharded = [p.grad for p in self.head.parameters() if p.grad is not None]
        zero = torch.zeros((), device=self.device)
        shard_sq = sum((g.float().pow(2).sum() for g in sharded), zero)
        dist.all_reduce(shard_sq)
        total = torch.sqrt(sum((g.float().pow(2).sum() for g in replicated), zero) + shard_sq)
        factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in replicated + sharded:
            g.mul_(factor.to(g.dtype))

    def _log_window(self, bar: tqdm, loss_sum: torch.Tensor, n: int, t0: float):
        mean_loss = float(loss_sum.item()) / max(n, 1)
        if not math.isfinite(mean_loss) and self.scaler is None:
            raise TrainingError(
                f"loss is {mean_loss} at step {self.step}; lower the lr or check the data", "non_finite_loss"
            )
        elapsed = max(time.monotonic() - t0, 1e-9)
        images_per_s = n * self.sampler.global_batch / elapsed
        lr = self.optimizer.param_groups[0]["lr"]
        bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}", img_s=f"{images_per_s:.0f}")
        epoch = self.step // self.steps_per_epoch
        self.log.write(self.step, epoch, {"loss": mean_loss, "lr": lr, "images_per_s": images_per_s})
        return torch.zeros((), device=self.device), 0, time.monotonic()

    # ----------------------------------------------------------------------------------- evaluation
    def _evaluate(self) -> None:
        if self.info.is_main:
            from training.evaluation.during_training import TrainingEvaluator

            if self._evaluator is None:
                self._evaluator = TrainingEvaluator(self.cfg.eval, self.device)
            self.last_eval = self._evaluator.run(self.backbone)
            self.model.train()
            self.log.write(
                self.step,
                self.step // self.steps_per_epoch,
                {
                    f"{k}/{m}": v
                    for k, res in self.last_eval.items()
                    for m, v in res.items()
                    if isinstance(v, (int, float))
                },
            )
            metric = self._evaluator.best_metric_value(self.last_eval, self.cfg.eval.best_metric)
            summary = ", ".join(f"{k} acc {r['accuracy'] * 100:.2f}%" for k, r in self.last_eval.items())
            tqdm.write(f"[step {self.step}] eval: {summary}")
            improved = self.best_metric is None or metric > self.best_metric
            if improved:
                self.best_metric = metric
        else:
            improved = False
        if broadcast_flag(self.info, improved):  # every rank contributes its RNG / Partial FC shard
            rank_states = self._gather_rank_states()
            if self.info.is_main:
                atomic_save(self._state(rank_states), self.out_dir / "checkpoint_best.pt")
        barrier(self.info)

    # ---------------------------------------------------------------------------------- checkpoints
    def _state(self, rank_states: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        epoch, batch_in_epoch = divmod(self.step, self.steps_per_epoch)
        return {
            "backbone": self.backbone.state_dict(),
            "config": self.cfg.model_dump(mode="json"),
            "loss": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "num_classes": self.num_classes,
            "world_size": self.info.world_size,
            "rng": capture_rng(),
            "rank_states": rank_states,
            "eval": self.last_eval,
            "best_metric": self.best_metric,
        }

    def _rank_local(self) -> dict[str, Any]:
        local: dict[str, Any] = {"rng": capture_rng()}
        if self.cfg.partial_fc.enabled:  # sharded class centres and their optimiser state
            local["loss"] = self.head.state_dict()
            local["optimizer"] = self.optimizer.state_dict()
        return local

    def _gather_rank_states(self) -> list[dict[str, Any]] | None:
        """Every rank's local state (a collective call: all ranks must make it)."""
        if not self.info.enabled:
            return None
        gathered: list[Any] = [None] * self.info.world_size
        dist.all_gather_object(gathered, self._rank_local())
        return gathered

    def save(self) -> Path | None:
        """Write ``step_XXXXXX.pt`` and ``checkpoint_last.pt`` (rank 0; other ranks send their state)."""
        rank_states = self._gather_rank_states()
        path = None
        if self.info.is_main:
            path = save_step_checkpoint(self._state(rank_states), self.out_dir, self.cfg.checkpoint.keep_last)
        barrier(self.info)
        return path

    def _load(self, state: dict[str, Any]) -> None:
        saved_world = state.get("world_size", 1)
        if self.cfg.partial_fc.enabled and saved_world != self.info.world_size:
            raise TrainingError(
                f"checkpoint was written by {saved_world} processes with sharded Partial FC; "
                f"resume with the same number (now {self.info.world_size})",
                "resume_mismatch",
            )
        self.backbone.load_state_dict(state["backbone"])
        local = state.get("rank_states") or [None] * saved_world
        local_state = local[self.info.rank] if self.info.rank < len(local) and local[self.info.rank] else {}
        self.head.load_state_dict(local_state.get("loss", state["loss"]))
        self.optimizer.load_state_dict(local_state.get("optimizer", state["optimizer"]))
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best_metric, self.last_eval = state.get("best_metric"), state.get("eval") or {}
        restore_rng(local_state.get("rng", state["rng"]))
