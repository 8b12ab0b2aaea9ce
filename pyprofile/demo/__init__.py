"""A realistic, seeded e-commerce demo warehouse: raw customers, orders, items, products, events.

Customers belong to one of six hidden types that differ in demographics, purchase rate, basket
size, category and price-tier preferences, discounts, returns and browsing. The type is written
to ``demo_truth.customer_types`` only, which no feature or model reads, so tests can measure
whether segmentation recovers it. Data is generated in chunks of customers straight into DuckDB,
so a million customers (over ten million orders) fits comfortably in memory.

One module per table (:mod:`.customers`, :mod:`.orders`, :mod:`.items`, :mod:`.events`,
:mod:`.products`), the hidden types in :mod:`.customer_types`, the calendar in
:mod:`.seasonality`; :mod:`.generate` writes them into the warehouse.
"""

from pyprofile.demo.customer_types import TYPES, CustomerType
from pyprofile.demo.generate import DemoSummary, generate_demo
from pyprofile.demo.seasonality import DAYS, DEFAULT_END

__all__ = ["DAYS", "DEFAULT_END", "TYPES", "CustomerType", "DemoSummary", "generate_demo"]
