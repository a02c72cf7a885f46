"""Monitors, leases, events, unknown clusters, webhooks and their deliveries (issue 15).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("gallery", sa.String(128), nullable=False),
        sa.Column("fps", sa.Float, nullable=False),
        sa.Column("min_face", sa.Integer, nullable=False),
        sa.Column("roi", sa.JSON, nullable=True),
        sa.Column("absence_s", sa.Float, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_table(
        "monitor_leases",
        sa.Column(
            "monitor_id", sa.Integer, sa.ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires_at", Stamp, nullable=False),
        sa.Column("health", sa.JSON, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("monitor", sa.String(64), nullable=False),
        sa.Column("gallery", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=True),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("similarity", sa.Float, nullable=True),
        sa.Column("cluster_id", sa.Integer, nullable=True),
        sa.Column("first_seen", Stamp, nullable=False),
        sa.Column("last_seen", Stamp, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("snapshot", sa.LargeBinary, nullable=True),
        sa.Column("embedding", sa.LargeBinary, nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_events_monitor_time", "events", ["monitor", "first_seen"])
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_subject", "events", ["subject"])
    op.create_index("ix_events_cluster_id", "events", ["cluster_id"])
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_table(
        "unknown_clusters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("gallery", sa.String(128), nullable=False),
        sa.Column("centroid", sa.LargeBinary, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("first_seen", Stamp, nullable=False),
        sa.Column("last_seen", Stamp, nullable=False),
    )
    op.create_index("ix_unknown_clusters_gallery", "unknown_clusters", ["gallery"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("monitor", sa.String(64), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", BigId, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", Stamp, nullable=False),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_index("ix_deliveries_state_next", "deliveries", ["state", "next_at"])
    op.create_index("ix_deliveries_event_id", "deliveries", ["event_id"])
    op.create_index("ix_deliveries_webhook_id", "deliveries", ["webhook_id"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("webhooks")
    op.drop_table("unknown_clusters")
    op.drop_table("events")
    op.drop_table("monitor_leases")
    op.drop_table("monitors")
