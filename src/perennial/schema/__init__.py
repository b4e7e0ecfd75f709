"""The canonical data model: tables, columns and what they mean."""

from perennial.schema.tables import TABLES, Column, Kind, OrderStatus, Table, table

__all__ = ["TABLES", "Column", "Kind", "OrderStatus", "Table", "table"]
