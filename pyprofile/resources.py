"""Files that ship with pyprofile: the dbt project and the SQL scoring functions (``udfs/``).

In a source checkout they sit next to the package; in an installed wheel they are copied
inside it (``pyprofile/_dbt_project``, ``pyprofile/_udfs``).
"""

from __future__ import annotations

from pathlib import Path

from pyprofile.errors import PyprofileError

_HERE = Path(__file__).resolve().parent


def _bundled(folder: str, marker: str) -> Path:
    for candidate in (_HERE.parent / folder, _HERE / f"_{folder}"):
        if (candidate / marker).exists():
            return candidate
    raise PyprofileError(f"the bundled {folder}/ folder was not found; reinstall pyprofile")


def project_dir() -> Path:
    """The bundled dbt project."""
    return _bundled("dbt_project", "dbt_project.yml")


def udfs_dir() -> Path:
    """The SQL scoring functions and templates."""
    return _bundled("udfs", "rfm_segment.sql")
