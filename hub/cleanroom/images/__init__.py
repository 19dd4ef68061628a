"""Workspace images: their definitions live in ``images/`` at the top of the repository."""
