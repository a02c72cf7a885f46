"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class _GallerySizes(Collector):
    """Gallery sizes read at scrape time from the index registry: totals, or per gallery name when the
    owner opts in (``metrics_gallery_names``; names can be personal data)."""

    def __init__(
        self, sizes: Callable[[], Iterable[tuple[str, int, int]]], by_name: Callable[[], bool]
    ) -> None:
        self.sizes = sizes
        self.by_name = by_name

    def collect(self) -> Iterable[GaugeMetricFamily]:
        rows = list(self.sizes())
        if not self.by_name():
            yield GaugeMetricFamily("marginface_galleries", "Galleries", value=len(rows))
            yield GaugeMetricFamily("marginface_gallery_faces", "Faces indexed (all galleries)",
                                    value=sum(r[1] for r in rows))
            yield GaugeMetricFamily("marginface_gallery_subjects", "Subjects (all galleries)",
                                    value=sum(r[2] for r in rows))
            return
        faces = GaugeMetricFamily("marginface_gallery_faces", "Faces indexed per gallery", labels=["gallery"])
        subjects = GaugeMetricFamily(
            "marginface_gallery_subjects", "Subjects per gallery", labels=["gallery"]
        )
        for name, n_faces, n_subjects in rows:
            faces.add_metric([name], n_faces)
            subjects.add_metric([name], n_subjects)
        yield faces
        yield subjects


class Metrics:
    """Request latencies per route, faces embedded, batch sizes, gallery sizes."""

    def __init__(self) -> None:
        self.gallery_names = False  # label gallery sizes by name (settings.metrics_gallery_names)
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "marginface_request_seconds",
            "Request latency per route",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.faces_embedded = Counter(
            "marginface_faces_embedded", "Faces embedded", ["pack"], registry=self.registry
        )
        self.batch_size = Histogram(
            "marginface_embed_batch_size",
            "Faces per embedding batch",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "marginface_embed_batch_seconds",
            "Time per embedding batch",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "marginface_rejected_busy",
            "Requests refused with 503 because the server was busy",
            registry=self.registry,
        )

    def watch_galleries(self, sizes: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        self.registry.register(_GallerySizes(sizes, lambda: self.gallery_names))

    def batch_observer(self, pack: str) -> Callable[[int, float], None]:
        def observe(size: int, seconds: float) -> None:
            self.batch_size.observe(size)
            self.batch_seconds.observe(seconds)
            self.faces_embedded.labels(pack).inc(size)

        return observe
