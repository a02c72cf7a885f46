"""The web console: static HTML, CSS and JavaScript modules served at ``/console`` (no build step)."""

from app.console.router import router

__all__ = ["router"]
