"""Aligned face crops kept with each face; gallery migration state (issue 13).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("galleries", recreate="never") as batch:  # a copy would cascade-delete
        batch.add_column(sa.Column("keep_crops", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_table(
        "face_crops",
        sa.Column(
            "face_id",
            BigId,
            sa.ForeignKey("faces.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "gallery_id", sa.Integer, sa.ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_face_crops_gallery_id", "face_crops", ["gallery_id"])
    op.create_table(
        "gallery_migrations",
        sa.Column(
            "gallery_id",
            sa.Integer,
            sa.ForeignKey("galleries.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("pack_name", sa.String(128), nullable=False),
        sa.Column("pack_version", sa.String(64), nullable=False),
        sa.Column("from_pack_name", sa.String(128), nullable=False),
        sa.Column("from_pack_version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("error", sa.String(1024), nullable=True),
        sa.Column("started_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.Column("finished_at", Stamp, nullable=True),
    )
    op.create_table(
        "face_shadow_embeddings",
        sa.Column(
            "face_id",
            BigId,
            sa.ForeignKey("faces.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "gallery_id", sa.Integer, sa.ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("pack_version", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_face_shadow_embeddings_gallery_id", "face_shadow_embeddings", ["gallery_id"])


def downgrade() -> None:
    op.drop_table("face_shadow_embeddings")
    op.drop_table("gallery_migrations")
    op.drop_table("face_crops")
    with op.batch_alter_table("galleries", recreate="never") as batch:  # a copy would cascade-delete
        batch.drop_column("keep_crops")
