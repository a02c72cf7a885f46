"""Initial schema: galleries, subjects, faces, api_keys, changes.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "galleries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("pack_name", sa.String(128), nullable=False),
        sa.Column("pack_version", sa.String(64), nullable=False),
        sa.Column("embedding_size", sa.Integer, nullable=False),
        sa.Column("index_kind", sa.String(16), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "gallery_id", sa.Integer, sa.ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.UniqueConstraint("gallery_id", "name", name="uq_subject_gallery_name"),
    )
    op.create_index("ix_subjects_gallery_id", "subjects", ["gallery_id"])
    op.create_table(
        "faces",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.Integer, sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "gallery_id", sa.Integer, sa.ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("pack_name", sa.String(128), nullable=False),
        sa.Column("pack_version", sa.String(64), nullable=False),
        sa.Column("box", sa.JSON, nullable=True),
        sa.Column("landmarks", sa.JSON, nullable=True),
        sa.Column("det_score", sa.Float, nullable=True),
        sa.Column("source", sa.String(512), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_faces_subject_id", "faces", ["subject_id"])
    op.create_index("ix_faces_gallery_id", "faces", ["gallery_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("revoked_at", Stamp, nullable=True),
    )
    op.create_table(
        "changes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("gallery_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=True),
        sa.Column("face_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_changes_gallery_id", "changes", ["gallery_id"])


def downgrade() -> None:
    op.drop_table("changes")
    op.drop_table("api_keys")
    op.drop_table("faces")
    op.drop_table("subjects")
    op.drop_table("galleries")
