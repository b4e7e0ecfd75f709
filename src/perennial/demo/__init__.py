"""Demo data with known answers: a shop's customers, orders and behaviour over two years.

``generate_demo`` writes the canonical ingest inputs (customers CSV, orders, order
items and events as Parquet, identity and education events as JSON Lines) and a
ground-truth Parquet file of every customer's latent traits.
"""

from perennial.demo.dataset import DemoDataset, DemoFile
from perennial.demo.generator import generate_demo

__all__ = ["DemoDataset", "DemoFile", "generate_demo"]
