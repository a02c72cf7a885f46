"""Calibration, enrollment policy, negatives (issue 11).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gallery_trust",
        sa.Column(
            "gallery_id",
            sa.Integer,
            sa.ForeignKey("galleries.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("calibration", sa.JSON, nullable=True),
        sa.Column("policy", sa.JSON, nullable=True),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_table(
        "subject_negatives",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "gallery_id", sa.Integer, sa.ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("subject_id", sa.Integer, sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.String(512), nullable=True),
        sa.Column("face_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_subject_negatives_gallery_id", "subject_negatives", ["gallery_id"])
    op.create_index("ix_subject_negatives_subject_id", "subject_negatives", ["subject_id"])


def downgrade() -> None:
    op.drop_table("subject_negatives")
    op.drop_table("gallery_trust")
