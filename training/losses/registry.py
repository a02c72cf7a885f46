"""Loss names → constructors with the defaults of docs/losses.md; ``build_loss`` and config parsing."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from training.losses.adaptive import AdaCos, AdaFace, CurricularFace
from training.losses.angular import AirFace, X2Softmax
from training.losses.arcface import ArcFace, CombinedMargin, SubcenterArcFace
from training.losses.base import check_number
from training.losses.composite import LossWithAux
from training.losses.cosface import CosFace
from training.losses.elasticface import ElasticFace
from training.losses.magface import MagFace
from training.losses.metric import CenterTerm, ContrastiveLoss, TripletLoss
from training.losses.softmax import NormFace, Softmax
from training.losses.sphereface import LSoftmax, SphereFace


@dataclass(frozen=True)
class LossSpec:
    cls: type[nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


CLASSIFICATION_LOSSES: dict[str, LossSpec] = {
    "softmax": LossSpec(Softmax, {}, "W_jᵀx + b_j"),
    "normface": LossSpec(NormFace, {"s": 30.0}, "s·cos θ"),
    "lsoftmax": LossSpec(LSoftmax, {"m": 4}, "‖W‖‖x‖·ψ(θ_y), λ-annealed"),
    "sphereface": LossSpec(SphereFace, {"m": 4}, "‖x‖·ψ(θ_y), λ-annealed"),
    "cosface": LossSpec(CosFace, {"s": 64.0, "m": 0.35}, "s·(cos θ_y - m)"),
    "amsoftmax": LossSpec(CosFace, {"s": 30.0, "m": 0.35}, "CosFace with s = 30"),
    "arcface": LossSpec(ArcFace, {"s": 64.0, "m": 0.5}, "s·cos(θ_y + m)"),
    "combined": LossSpec(
        CombinedMargin, {"s": 64.0, "m1": 1.0, "m2": 0.3, "m3": 0.2}, "s·(cos(m1θ+m2) - m3)"
    ),
    "airface": LossSpec(AirFace, {"s": 64.0, "m": 0.45}, "s·(π - 2(θ_y + m))/π"),
    "adacos": LossSpec(AdaCos, {"dynamic": True}, "s̃·cos θ, adaptive scale"),
    "x2softmax": LossSpec(X2Softmax, {"s": 64.0, "a": -0.9, "h": 0.0, "k": 0.65}, "s·(a(θ_y - h)² + k)"),
    "magface": LossSpec(MagFace, {"s": 64.0, "lambda_g": 35.0}, "s·cos(θ_y + m(‖x‖)) + λ_g·g(‖x‖)"),
    "elasticface-arc": LossSpec(ElasticFace, {"kind": "arc", "s": 64.0, "m": 0.5, "sigma": 0.05}, ""),
    "elasticface-cos": LossSpec(ElasticFace, {"kind": "cos", "s": 64.0, "m": 0.35, "sigma": 0.05}, ""),
    "elasticface-arc+": LossSpec(
        ElasticFace, {"kind": "arc", "s": 64.0, "m": 0.5, "sigma": 0.0175, "plus": True}, ""
    ),
    "elasticface-cos+": LossSpec(
        ElasticFace, {"kind": "cos", "s": 64.0, "m": 0.35, "sigma": 0.02, "plus": True}, ""
    ),
    "curricularface": LossSpec(
        CurricularFace, {"s": 64.0, "m": 0.5}, "arcface target, hard negatives reweighted"
    ),
    "adaface": LossSpec(AdaFace, {"s": 64.0, "m": 0.4, "h": 0.333}, "norm-adaptive margin"),
    "subcenter-arcface": LossSpec(
        SubcenterArcFace, {"s": 64.0, "m": 0.5, "k": 3}, "arcface over K sub-centres"
    ),
}

AUX_TERMS: dict[str, type[nn.Module]] = {
    "center": CenterTerm,
    "triplet": TripletLoss,
    "contrastive": ContrastiveLoss,
}
METRIC_LOSSES = ("center", "triplet", "contrastive")
LOSS_NAMES: tuple[str, ...] = (*CLASSIFICATION_LOSSES, *METRIC_LOSSES)


def _accepted(cls: type[nn.Module]) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is nn.Module:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                names.add(p.name)
    return names


def _check_keys(what: str, given: Mapping[str, Any], accepted: set[str]) -> None:
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for {what}; "
            f"accepted: {', '.join(sorted(accepted))}"
        )


def _build_classification(
    name: str, embedding_size: int, num_classes: int, hp: Mapping[str, Any]
) -> nn.Module:
    spec = CLASSIFICATION_LOSSES[name]
    accepted = _accepted(spec.cls) - ({"kind"} if spec.cls is ElasticFace else set())
    _check_keys(f"loss {name!r}", hp, accepted)
    return spec.cls(embedding_size, num_classes, **{**spec.defaults, **hp})


def _build_term(name: str, embedding_size: int, num_classes: int, hp: Mapping[str, Any]) -> nn.Module:
    cls = AUX_TERMS[name]
    _check_keys(f"term {name!r}", hp, _accepted(cls))
    if cls is CenterTerm:
        return CenterTerm(embedding_size, num_classes, **hp)
    return cls(**hp)


def build_aux(aux: Mapping[str, Any], embedding_size: int, num_classes: int) -> tuple[dict, dict]:
    """Parse ``{"center": {"weight": 0.003, "alpha": 0.5}, "triplet": {...}}`` into terms and weights."""
    if not isinstance(aux, Mapping):
        raise ValueError(f"aux must be a mapping of term name to settings, got {type(aux).__name__}")
    terms, weights = {}, {}
    for term_name, settings in aux.items():
        if term_name not in AUX_TERMS:
            raise ValueError(f"unknown aux term {term_name!r}; valid: {', '.join(AUX_TERMS)}")
        settings = dict(settings or {})
        weights[term_name] = check_number(f"aux {term_name} weight", settings.pop("weight", 1.0), low=0.0)
        terms[term_name] = _build_term(term_name, embedding_size, num_classes, settings)
    return terms, weights


def build_loss(
    name: str,
    embedding_size: int,
    num_classes: int,
    *,
    aux: Mapping[str, Any] | None = None,
    **hyperparameters: Any,
) -> nn.Module:
    """The loss called ``name`` with the defaults of docs/losses.md overridden by ``hyperparameters``.

    ``aux`` adds weighted metric terms. ``center`` alone is softmax + λ_c·center (``lambda_c``, ``alpha``,
    and ``base`` to pick another classification loss); ``triplet`` and ``contrastive`` alone are pure
    metric losses without class logits. Unknown names or hyperparameters raise ValueError.
    """
    if not isinstance(name, str) or name not in LOSS_NAMES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSS_NAMES)}")
    if name == "center":
        base = hyperparameters.pop("base", "softmax")
        lambda_c = check_number("lambda_c", hyperparameters.pop("lambda_c", 0.003), low=0.0)
        alpha = hyperparameters.pop("alpha", 0.5)
        if base not in CLASSIFICATION_LOSSES:
            raise ValueError(
                f"center's base must be a classification loss; valid: {', '.join(CLASSIFICATION_LOSSES)}"
            )
        main = _build_classification(base, embedding_size, num_classes, hyperparameters)
        terms = {"center": CenterTerm(embedding_size, num_classes, alpha=alpha)}
        extra_terms, extra_weights = build_aux(aux or {}, embedding_size, num_classes)
        if "center" in extra_terms:
            raise ValueError("loss 'center' already has a center term; do not add another in aux")
        return LossWithAux(main, {**terms, **extra_terms}, {"center": lambda_c, **extra_weights})
    if name in CLASSIFICATION_LOSSES:
        main = _build_classification(name, embedding_size, num_classes, hyperparameters)
    else:
        main = _build_term(name, embedding_size, num_classes, hyperparameters)
    if not aux:
        return main
    terms, weights = build_aux(aux, embedding_size, num_classes)
    return LossWithAux(main, terms, weights)


def build_loss_from_config(config: Mapping[str, Any], embedding_size: int, num_classes: int) -> nn.Module:
    """Build from ``{name: arcface, s: 64, m: 0.5, aux: {center: {weight: 0.003}}}`` (the YAML ``loss:``)."""
    if not isinstance(config, Mapping) or "name" not in config:
        raise ValueError(
            "a loss config must be a mapping with a 'name' key, e.g. {'name': 'arcface', 's': 64}"
        )
    settings = dict(config)
    return build_loss(settings.pop("name"), embedding_size, num_classes, **settings)


def describe_losses() -> list[tuple[str, dict[str, Any], str]]:
    """(name, defaults, formula) for every registry name, for ``marginface losses list``."""
    rows = [(n, dict(s.defaults), s.summary) for n, s in CLASSIFICATION_LOSSES.items()]
    rows += [
        ("center", {"lambda_c": 0.003, "alpha": 0.5, "base": "softmax"}, "softmax + λ_c/2·mean‖x - c_y‖²"),
        ("triplet", {"margin": 0.2, "mining": "semi-hard"}, "FaceNet triplet on unit f"),
        ("contrastive", {"margin": 1.0}, "DeepID2 pair loss on unit f"),
    ]
    return rows
