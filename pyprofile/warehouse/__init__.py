"""The engine seam: the only package that talks to a SQL engine (DuckDB today).

* :class:`Warehouse` - the interface (read, query, write atomically, publish functions);
  ``Warehouse.open(target)`` picks the engine. :class:`DuckDBWarehouse` implements it.
* :mod:`~pyprofile.warehouse.sql` - the one place values become SQL text.
* :mod:`~pyprofile.warehouse.tables` - every table and function name, once.
* :mod:`~pyprofile.warehouse.registry` - storage of model artifacts.
* :mod:`~pyprofile.warehouse.scoring_sql` and :mod:`~pyprofile.warehouse.functions` - fitted
  models rendered as SQL scoring functions, and publishing them.
"""

from pyprofile.warehouse.duckdb import STORAGE_VERSION, DuckDBWarehouse
from pyprofile.warehouse.engine import DB_ENV, DEFAULT_DB, Warehouse, default_db_path
from pyprofile.warehouse.sql import qualified, quote, split_name

__all__ = [
    "DB_ENV",
    "DEFAULT_DB",
    "STORAGE_VERSION",
    "DuckDBWarehouse",
    "Warehouse",
    "default_db_path",
    "qualified",
    "quote",
    "split_name",
]
