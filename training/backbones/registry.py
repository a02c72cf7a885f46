"""A name → constructor registry for face-embedding backbones (``build_backbone("iresnet50")``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from models.errors import MarginFaceError

BackboneFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, BackboneFactory] = {}


class UnknownBackboneError(MarginFaceError):
    """A backbone name that is not registered."""

    code = "unknown_backbone"


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator: register ``factory(embedding_size=..., dropout=..., **kwargs)`` under ``name``."""

    def decorator(factory: BackboneFactory) -> BackboneFactory:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_backbones() -> list[str]:
    """Sorted names of every registered backbone."""
    return sorted(_REGISTRY)


def build_backbone(name: str, embedding_size: int = 512, dropout: float = 0.0, **kwargs) -> nn.Module:
    """Build the backbone called ``name``; it maps N×3×112×112 crops to N×``embedding_size`` embeddings."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownBackboneError(f"unknown backbone {name!r}; valid names: {', '.join(list_backbones())}")
    if embedding_size <= 0:
        raise ValueError(f"embedding_size must be positive, got {embedding_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return factory(embedding_size=embedding_size, dropout=dropout, **kwargs)
