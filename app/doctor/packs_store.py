"""Checks of the model packs (installed, hashes verify, each model runs once) and of the store."""

from __future__ import annotations

from app.doctor.findings import Finding


def check_packs(wanted: list[str], verify: bool) -> list[Finding]:
    from models.errors import MarginFaceError
    from models.packs.store import list_packs, packs_dir, resolve_pack

    root = packs_dir()
    names = [folder.name for folder, _ in list_packs()]
    out: list[Finding] = []
    for name in dict.fromkeys(wanted + names):
        if name not in names:
            out.append(
                Finding(
                    f"pack {name}",
                    "fail",
                    f"not installed in {root}",
                    why="the server loads it at start-up and refuses to start without it",
                    fix=f"marginface models install {name}"
                    if name == "default"
                    else "marginface models install PATH-OR-NAME  (see `marginface models list`)",
                )
            )
            continue
        if not verify:
            out.append(Finding(f"pack {name}", "ok", "installed (not verified)"))
            continue
        try:
            from models.packs.checks import smoke_run

            folder, manifest = resolve_pack(name, verify=True)
            smoke_run(folder, manifest)
        except MarginFaceError as exc:
            out.append(
                Finding(
                    f"pack {name}",
                    "fail",
                    f"does not verify [{exc.code}]",
                    why=str(exc),
                    fix=f"marginface models install {name} --force"
                    if name == "default"
                    else f"reinstall it: marginface models remove {name} && marginface models install …",
                )
            )
            continue
        out.append(Finding(f"pack {name}", "ok", f"{manifest.version}: hashes match, every model runs"))
    return out


def check_store(url: str) -> Finding:
    """Reachable, and at the newest schema revision (the server migrates on start; CLI too)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    try:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        from app.store.db import make_engine
        from app.store.migrate import alembic_config

        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                current = MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    except Exception as exc:  # noqa: BLE001 - any driver error means "not reachable"
        return Finding(
            "store",
            "fail",
            f"{shown} not reachable",
            why=str(exc).splitlines()[0][:300],
            fix="check MARGINFACE_DATABASE_URL (or MARGINFACE_HOME for SQLite) and that the "
            "database server is running",
        )
    if current is None:
        return Finding("store", "ok", f"{shown}: empty (created on first start)")
    if current != head:
        return Finding(
            "store",
            "warn",
            f"{shown}: schema {current}, code expects {head}",
            why="the server upgrades it in place at start-up",
            fix="marginface serve (or any `marginface keys` command) migrates it",
        )
    return Finding("store", "ok", f"{shown}: schema {current}")
