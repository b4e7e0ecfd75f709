"""BG/NBD + Gamma-Gamma fit and scoring against lifetimes and PyMC-Marketing; churn at 1 M.

Issue 5 (Performance). Two summaries, each computed once by ours
(``summary_for_btyd`` -> ``backend.to_pyarrow`` -> Parquet) and read by every side
from the same file:

* **CDNOW**: ``tests/data/CDNOW_master.txt`` (23,570 customers) ingested with
  ``examples/mappings/cdnow.yaml`` into a scratch home; weeks, calibration through
  1997-09-30 (``calibration_end`` 1997-10-01 00:00 America/New_York);
* **demo 1 M**: the demo store ``bench_features.py`` builds
  (``benchmarks/data/features-f1-1000000c-s7/home``, 1 M customers, 6 M orders), read
  only; weeks, as of 2026-01-01 00:00 UTC, local days in Asia/Shanghai.

Each side then runs the same steps in its own fresh process, timed one by one: read the
Parquet file, fit BG/NBD, fit Gamma-Gamma (customers with a repeat purchase and a
positive mean spend), P(alive), expected purchases over 12 months (52.18 weeks),
expected spend per purchase, and 12-month CLV discounted at 15 % a year:

* ours: ``BtydSummary.from_arrow``, ``fit_bgnbd``, ``fit_gamma_gamma``, the models'
  ``p_alive`` / ``conditional_expected_purchases`` / ``conditional_expected_spend`` and
  ``clv.customer_lifetime_value``;
* ``lifetimes``: ``BetaGeoFitter().fit``, ``GammaGammaFitter().fit``,
  ``conditional_probability_alive``, ``conditional_expected_number_of_purchases_up_to_time``,
  ``conditional_expected_average_profit``, ``customer_lifetime_value(freq="W")``;
* ``pymc``: PyMC-Marketing's ``BetaGeoModel`` and ``GammaGammaModel``,
  ``fit(method="map")`` with flat priors (``HalfFlat`` on r, alpha, a, b; Gamma-Gamma's
  defaults are flat already). ``find_MAP`` maximises the log-density without the
  Jacobian of the log transform, so with flat priors the MAP *is* the maximum-likelihood
  estimate and the log-likelihoods can be compared. Before its clock the process fits
  the same models on the first 2,000 customers once, so PyTensor's compiled C code
  comes from its disk cache as it does for any user after the first run;
* ``pymc_default``: the same with PyMC-Marketing's default BG/NBD priors (Weibull on r
  and alpha, a = phi kappa, b = (1 - phi) kappa with phi ~ Uniform, kappa ~ Pareto(1,
  1)): a MAP, not a maximum-likelihood estimate, so its log-likelihood is reported but
  not held to the tolerance (nor are its outputs).

lifetimes and PyMC-Marketing count a month as 4.345 weeks and take a monthly discount
rate: they get ``1.15 ** (1 / 12) - 1``, so both discount month k by 1.15^(k/12) as
ours does; ours counts a month as 365.25 / 12 days (4.348 weeks). The output check
recomputes ours with their month to compare CLV customer by customer.

After the timed runs, every side's parameters are evaluated under our log-likelihood
and under each peer's (lifetimes' ``_negative_log_likelihood`` x n, PyMC's model
``logp`` without the Jacobian); any relative difference from ours above 1e-6 fails the
run. Per-customer outputs are compared with ours too.

Churn (demo 1 M only): ``train_churn_model`` with the default ``purchase`` config
(data end = the store's latest order or event), then ``score_customers`` as of
2026-01-01 with the model it trained (loaded from a scratch registry before the clock),
each in its own process; DuckDB gets ``--memory-limit`` (default 6GB: other benchmarks
share the machine). Every process reads the store's newest snapshot and writes only to
its scratch home (DuckDB's spill folder, the registry): the store is never written.

Times are wall seconds of the work after imports; peak RSS is the process's VmHWM
(imports included; the RSS after imports is printed beside it). Ratios are ours / peer:
below 1 means ours is faster. Targets: >= 20x faster than lifetimes, faster than
PyMC-Marketing. Results: ``benchmarks/RESULTS.md``.

Setup (the peers live in their own virtualenv, never in the project's environment or
lock; ``benchmarks/.peers/`` is git-ignored)::

    .tools/bin/uv venv --python .venv/bin/python benchmarks/.peers/venv
    .tools/bin/uv pip install --python benchmarks/.peers/venv/bin/python \\
        lifetimes pymc-marketing pandas pyarrow
    nice -n 10 .venv/bin/python benchmarks/bench_models.py                # everything
    nice -n 10 .venv/bin/python benchmarks/bench_models.py --sets cdnow --no-churn  # quick

The code measured is a copy of the importable ``perennial`` package taken at the start
(``--live-src`` imports the working tree instead).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench_features import Clock
from bench_ingest import _describe_source, _peak_rss_mb, _perennial_package

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
DEFAULT_DATA_DIR = ROOT / "data"
DEFAULT_STORE = DEFAULT_DATA_DIR / "features-f1-1000000c-s7"
DEFAULT_PEER_PYTHON = ROOT / ".peers" / "venv" / "bin" / "python"
THREADS = 2

CDNOW_FILE = REPO / "tests" / "data" / "CDNOW_master.txt"
CDNOW_MAPPING = REPO / "examples" / "mappings" / "cdnow.yaml"
CDNOW_TIMEZONE = "America/New_York"
CDNOW_CALIBRATION_END = datetime(1997, 10, 1, tzinfo=ZoneInfo(CDNOW_TIMEZONE))
INGEST_NOW = datetime(2026, 11, 23, tzinfo=UTC)
DEMO_AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
"""The end of the demo period (its last orders are on 2025-12-31 UTC)."""
DEMO_TIMEZONE = "Asia/Shanghai"

UNIT_DAYS = 7.0
HORIZON_MONTHS = 12
ANNUAL_DISCOUNT_RATE = 0.15
DAYS_PER_MONTH = 365.25 / 12
HORIZON = HORIZON_MONTHS * DAYS_PER_MONTH / UNIT_DAYS
"""Weeks in the 12-month horizon of ``expected purchases``."""
PEER_WEEKS_PER_MONTH = 4.345
"""lifetimes' and PyMC-Marketing's month when time is in weeks (``freq="W"``)."""
MONTHLY_DISCOUNT_RATE = (1 + ANNUAL_DISCOUNT_RATE) ** (1 / 12) - 1
PYMC_WARMUP_CUSTOMERS = 2000

LL_RTOL = 1e-6
OUTPUT_RTOL = 1e-3
"""Per-customer outputs from parameters that agree to LL_RTOL: a looser, relative bound."""
TARGET_VS_LIFETIMES = 20.0
TARGET_VS_PYMC = 1.0

SETS = ("cdnow", "demo")
SIDES = ("ours", "lifetimes", "pymc", "pymc_default")
DEFAULT_SIDES = SIDES
PEERS_HELD_TO_TOLERANCE = ("lifetimes", "pymc")
STEPS = (
    "load",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
)
OUTPUTS = ("p_alive", "expected_purchases", "expected_spend", "clv")
BGNBD = ("r", "alpha", "a", "b")
GAMMA_GAMMA = ("p", "q", "gamma")


# --------------------------------------------------------------------------- children


class Laps:
    """Wall time of each step in turn; CPU and peak RSS over the whole measurement.

    Before the clock: the imports that reading Parquet makes on first use (pyarrow's
    dataset module, pandas: 1.5 s here) and, given the summary, one read of it (the first
    read in a process starts pyarrow's thread pools: 0.1 s), so that every side's
    ``load`` step is the read itself, as it already was for PyMC after its warm-up.
    """

    def __init__(self, summary: Path | None = None) -> None:
        import importlib

        for module in ("pandas", "pyarrow.dataset", "pyarrow.parquet"):
            importlib.import_module(module)
        if summary is not None:
            importlib.import_module("pyarrow.parquet").read_table(summary)
        self.rss_after_imports_mb = _peak_rss_mb()
        self.clock = Clock()
        self.last = self.clock.started
        self.steps: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = now - self.last
        self.last = now

    def stop(self, rows: int, **extra: Any) -> dict[str, Any]:
        return self.clock.stop(
            rows, steps=self.steps, rss_after_imports_mb=self.rss_after_imports_mb, **extra
        )


def _save_outputs(out: Path, customer_id: Any, outputs: dict[str, Any]) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"customer_id": pa.array(np.asarray(customer_id).astype(str))}
    columns |= {name: pa.array(np.asarray(outputs[name], dtype=np.float64)) for name in OUTPUTS}
    pq.write_table(pa.table(columns), out)


def ours_btyd(summary_path: Path, out: Path) -> dict[str, Any]:
    """Ours: read, validate, fit both models, then the four per-customer predictions."""
    import pyarrow.parquet as pq

    from perennial.models.bgnbd import fit_bgnbd
    from perennial.models.btyd_data import BtydSummary
    from perennial.models.clv import customer_lifetime_value
    from perennial.models.gamma_gamma import fit_gamma_gamma

    laps = Laps(summary_path)
    summary = BtydSummary.from_arrow(pq.read_table(summary_path))
    laps.lap("load")
    bgnbd = fit_bgnbd(summary)
    laps.lap("fit_bgnbd")
    spend_model = fit_gamma_gamma(summary)
    laps.lap("fit_gamma_gamma")
    outputs = {"p_alive": bgnbd.p_alive(summary)}
    laps.lap("p_alive")
    outputs["expected_purchases"] = bgnbd.conditional_expected_purchases(summary, HORIZON)
    laps.lap("expected_purchases")
    outputs["expected_spend"] = spend_model.conditional_expected_spend(summary)
    laps.lap("expected_spend")
    outputs["clv"] = customer_lifetime_value(
        bgnbd,
        spend_model,
        summary,
        horizon_months=HORIZON_MONTHS,
        annual_discount_rate=ANNUAL_DISCOUNT_RATE,
        unit_days=UNIT_DAYS,
    )
    laps.lap("clv")
    assert bgnbd.fit is not None and spend_model.fit is not None
    result = laps.stop(
        len(summary),
        bgnbd=bgnbd.params,
        gamma_gamma=spend_model.params,
        spend_customers=spend_model.fit.n_customers,
        ll_own={"bgnbd": bgnbd.fit.log_likelihood, "gamma_gamma": spend_model.fit.log_likelihood},
    )
    _save_outputs(out, summary.customer_id, outputs)
    return result


def _peer_frame(summary_path: Path) -> Any:
    """The summary as pandas, with the Gamma-Gamma inputs ours uses (``spend_sample``).

    Customers whose mean spend is missing or not positive count as having no spend
    information (``spend_frequency`` 0), as ours treats them; ``spend_rows`` marks the
    customers Gamma-Gamma is fitted on.
    """
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(summary_path)
    frame["frequency"] = frame["frequency"].astype(np.int64)
    spend = frame["monetary_value"].astype(np.float64)
    usable = np.isfinite(spend) & (spend > 0)
    frame["spend_frequency"] = np.where(usable, frame["frequency"], 0)
    frame["spend"] = np.where(usable, spend, 0.0)
    frame["spend_rows"] = frame["spend_frequency"] > 0
    return frame


def lifetimes_btyd(summary_path: Path, out: Path) -> dict[str, Any]:
    """lifetimes, used as its documentation shows: fitters on Series, then predictions."""
    import warnings

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    warnings.simplefilter("ignore")  # lifetimes' FutureWarnings from pandas and numpy
    laps = Laps(summary_path)
    frame = _peer_frame(summary_path)
    x, t_x, age = frame["frequency"], frame["recency"], frame["T"]
    laps.lap("load")
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(x, t_x, age)
    laps.lap("fit_bgnbd")
    fitted = frame[frame["spend_rows"]]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(fitted["spend_frequency"], fitted["spend"])
    laps.lap("fit_gamma_gamma")
    outputs = {"p_alive": bgf.conditional_probability_alive(x, t_x, age)}
    laps.lap("p_alive")
    outputs["expected_purchases"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        HORIZON, x, t_x, age
    )
    laps.lap("expected_purchases")
    outputs["expected_spend"] = ggf.conditional_expected_average_profit(
        frame["spend_frequency"], frame["spend"]
    )
    laps.lap("expected_spend")
    outputs["clv"] = ggf.customer_lifetime_value(
        bgf, x, t_x, age, frame["spend"], time=HORIZON_MONTHS,
        discount_rate=MONTHLY_DISCOUNT_RATE, freq="W",
    )  # fmt: skip
    laps.lap("clv")
    result = laps.stop(
        len(frame),
        bgnbd={k: float(bgf.params_[k]) for k in BGNBD},
        gamma_gamma={"p": float(ggf.params_["p"]), "q": float(ggf.params_["q"]),
                     "gamma": float(ggf.params_["v"])},
        spend_customers=len(fitted),
        ll_own={"bgnbd": -bgf._negative_log_likelihood_ * len(frame),
                "gamma_gamma": -ggf._negative_log_likelihood_ * len(fitted)},
    )  # fmt: skip
    _save_outputs(out, frame["customer_id"], outputs)
    return result


def _flat_bgnbd_config() -> dict[str, Any]:
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in BGNBD}


def _pymc_fit(
    frame: Any, flat: bool, lap: Callable[[str], None] = lambda _step: None
) -> tuple[Any, Any]:
    """BG/NBD and Gamma-Gamma fitted by ``fit(method="map")`` on a pandas summary."""
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    transactions = BetaGeoModel(model_config=_flat_bgnbd_config() if flat else None)
    counts = frame[["customer_id", "frequency", "recency", "T"]]
    transactions.fit(data=counts, method="map", progressbar=False)
    lap("fit_bgnbd")
    spend = GammaGammaModel()
    spend.fit(data=_pymc_spend_rows(frame), method="map", progressbar=False)
    lap("fit_gamma_gamma")
    return transactions, spend


def _pymc_spend_rows(frame: Any) -> Any:
    """The customers Gamma-Gamma is fitted on, with PyMC-Marketing's column names."""
    fitted = frame[frame["spend_rows"]]
    return fitted[["customer_id", "spend_frequency", "spend"]].rename(
        columns={"spend_frequency": "frequency", "spend": "monetary_value"}
    )


def pymc_btyd(summary_path: Path, out: Path, *, flat: bool = True) -> dict[str, Any]:
    """PyMC-Marketing: ``fit(method="map")``, then its expectations (MAP: one draw)."""
    import logging
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    started = time.perf_counter()
    _pymc_fit(_peer_frame(summary_path).head(PYMC_WARMUP_CUSTOMERS), flat)
    warmup = time.perf_counter() - started
    laps = Laps(summary_path)
    frame = _peer_frame(summary_path)
    counts = frame[["customer_id", "frequency", "recency", "T"]]
    spend_frame = frame[["customer_id", "frequency", "recency", "T"]].assign(
        frequency=frame["spend_frequency"], monetary_value=frame["spend"]
    )
    laps.lap("load")
    transactions, spend = _pymc_fit(frame, flat, laps.lap)
    outputs = {"p_alive": transactions.expected_probability_alive(counts)}
    laps.lap("p_alive")
    outputs["expected_purchases"] = transactions.expected_purchases(counts, future_t=HORIZON)
    laps.lap("expected_purchases")
    outputs["expected_spend"] = spend.expected_customer_spend(spend_frame)
    laps.lap("expected_spend")
    outputs["clv"] = spend.expected_customer_lifetime_value(
        transactions, spend_frame.assign(frequency=frame["frequency"]),
        future_t=HORIZON_MONTHS, discount_rate=MONTHLY_DISCOUNT_RATE, time_unit="W",
    )  # fmt: skip
    laps.lap("clv")
    posterior = {**_map_point(transactions), **_map_point(spend)}
    result = laps.stop(
        len(frame),
        bgnbd={k: posterior[k] for k in BGNBD},
        gamma_gamma={"p": posterior["p"], "q": posterior["q"], "gamma": posterior["v"]},
        spend_customers=int(frame["spend_rows"].sum()),
        warmup_seconds=warmup,
    )
    flat_outputs = {k: np.asarray(v).reshape(-1) for k, v in outputs.items()}
    _save_outputs(out, frame["customer_id"], flat_outputs)
    return result


def _map_point(model: Any) -> dict[str, float]:
    posterior = model.fit_result
    return {name: float(posterior[name].values.reshape(-1)[0]) for name in posterior.data_vars}


# ----- log-likelihoods of every side's parameters


def ll_ours(summary_path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Each side's parameters under our log-likelihoods (BG/NBD eq. 6; Gamma-Gamma)."""
    import pyarrow.parquet as pq

    from perennial.models.bgnbd import BgNbdModel
    from perennial.models.btyd_data import BtydSummary
    from perennial.models.gamma_gamma import GammaGammaModel

    summary = BtydSummary.from_arrow(pq.read_table(summary_path))
    return {
        side: {
            "bgnbd": float(BgNbdModel(**p["bgnbd"]).log_likelihood(summary).sum()),
            "gamma_gamma": float(GammaGammaModel(**p["gamma_gamma"]).log_likelihood(summary).sum()),
        }
        for side, p in params.items()
    }


def ll_peers(summary_path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Each side's parameters under lifetimes' and PyMC-Marketing's log-likelihoods."""
    import warnings

    import numpy as np
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    warnings.simplefilter("ignore")
    frame = _peer_frame(summary_path)
    fitted = frame[frame["spend_rows"]]
    x, t_x, age = (frame[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    spend_x, spend = fitted["spend_frequency"].to_numpy(np.float64), fitted["spend"].to_numpy()
    bg_logp, gg_logp = _pymc_log_likelihoods(frame)
    result: dict[str, Any] = {}
    for side, p in params.items():
        bg = np.log([p["bgnbd"][k] for k in BGNBD])
        gg = np.log([p["gamma_gamma"][k] for k in GAMMA_GAMMA])
        weights, spend_weights = np.ones_like(x), np.ones_like(spend_x)
        result[side] = {
            "lifetimes": {
                "bgnbd": -BetaGeoFitter._negative_log_likelihood(bg, x, t_x, age, weights, 0.0)
                * len(x),
                "gamma_gamma": -GammaGammaFitter._negative_log_likelihood(
                    gg, spend_x, spend, spend_weights, 0.0
                )
                * len(spend_x),
            },
            "pymc": {"bgnbd": bg_logp(p["bgnbd"]), "gamma_gamma": gg_logp(p["gamma_gamma"])},
        }
    return result


def _pymc_log_likelihoods(
    frame: Any,
) -> tuple[Callable[[dict[str, float]], float], Callable[[dict[str, float]], float]]:
    """PyMC models with flat priors: their log-density without the Jacobian is the
    log-likelihood alone (HalfFlat adds 0 for positive values)."""
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    transactions = BetaGeoModel(model_config=_flat_bgnbd_config())
    transactions.build_model(frame[["customer_id", "frequency", "recency", "T"]])
    spend = GammaGammaModel()
    spend.build_model(_pymc_spend_rows(frame))
    return _logp_of(transactions.model, {}), _logp_of(spend.model, {"gamma": "v"})


def _logp_of(model: Any, renamed: dict[str, str]) -> Callable[[dict[str, float]], float]:
    logp = model.compile_logp(jacobian=False)
    names = [v.name for v in model.value_vars]

    def at(params: dict[str, float]) -> float:
        theirs = {renamed.get(k, k): v for k, v in params.items()}
        point = {n: math.log(theirs[n.removesuffix("_log__")]) for n in names}
        return float(logp(point))

    return at


# ----- output checks


def check_outputs(summary_path: Path, scratch: Path, sides: list[str]) -> dict[str, Any]:
    """Every peer's per-customer outputs against ours; CLV also against ours recomputed
    with the peers' 4.345-week month (the like-for-like comparison).

    CLV is compared only where both sides define spend alike: a customer with repeat
    purchases but no positive mean spend (refunds) has no spend information for ours
    (population mean), while lifetimes' and PyMC's CLV take the 0 at face value.
    """
    import numpy as np
    import pyarrow.parquet as pq

    from perennial.models.btyd_data import BtydSummary

    summary = BtydSummary.from_arrow(pq.read_table(summary_path))
    assert summary.monetary_value is not None
    spend = summary.monetary_value
    alike = (summary.frequency == 0) | (np.isfinite(spend) & (spend > 0))
    ours = pq.read_table(scratch / "ours.parquet")
    reference = {name: ours.column(name).to_numpy() for name in OUTPUTS}
    reference["clv_same_month"] = _clv_with_peer_month(summary, scratch / "ours.json")
    ids = ours.column("customer_id").to_numpy(zero_copy_only=False)
    result: dict[str, Any] = {"clv_left_out": int((~alike).sum())}
    for side in sides:
        theirs = pq.read_table(scratch / f"{side}.parquet")
        if not np.array_equal(theirs.column("customer_id").to_numpy(zero_copy_only=False), ids):
            result[side] = {"customer_order": math.inf}
            continue
        result[side] = {
            name: _relative_difference(
                theirs.column(name.removesuffix("_same_month")).to_numpy()[keep], values[keep]
            )
            for name, values in reference.items()
            for keep in [alike if name.startswith("clv") else slice(None)]
        }
    return result


def _clv_with_peer_month(summary: Any, params_file: Path) -> Any:
    from perennial.models.bgnbd import BgNbdModel
    from perennial.models.clv import customer_lifetime_value
    from perennial.models.gamma_gamma import GammaGammaModel

    params = json.loads(params_file.read_text())
    return customer_lifetime_value(
        BgNbdModel(**params["bgnbd"]),
        GammaGammaModel(**params["gamma_gamma"]),
        summary,
        horizon_months=HORIZON_MONTHS,
        annual_discount_rate=ANNUAL_DISCOUNT_RATE,
        unit_days=DAYS_PER_MONTH / PEER_WEEKS_PER_MONTH,
    )


def _relative_difference(values: Any, reference: Any) -> float:
    """max |a - b| / (|b| + 1e-6 mean |b|): relative, without blowing up on near-zeros."""
    import numpy as np

    scale = 1e-6 * float(np.mean(np.abs(reference))) or 1e-300
    if not np.all(np.isfinite(values)):
        return math.inf
    return float(np.max(np.abs(values - reference) / (np.abs(reference) + scale)))


# ----- summaries and churn (ours)


def prepare_cdnow(home: Path, out: Path) -> dict[str, Any]:
    """Ingest CDNOW_master into a scratch home, then its summary in weeks -> Parquet."""
    from perennial.config import Settings
    from perennial.ingest.mapping import load_mapping
    from perennial.ingest.pipeline import ingest_file

    settings = Settings(home=home, duckdb_threads=THREADS)
    mapping = load_mapping(CDNOW_MAPPING)
    report = ingest_file(CDNOW_FILE, settings, mapping=mapping, now=INGEST_NOW)
    result = _write_summary(
        settings, settings.warehouse, CDNOW_CALIBRATION_END, CDNOW_TIMEZONE, out
    )
    return {"orders": report.accepted, "quarantined": report.quarantined, **result}


def prepare_demo(store: Path, home: Path, out: Path, sample: int) -> dict[str, Any]:
    """The demo store's summary in weeks as of 2026-01-01 -> Parquet (store read only);
    with ``sample`` > 0 every k-th customer, about ``sample`` of them (trial runs)."""
    from perennial.config import Settings

    settings = Settings(home=home, duckdb_threads=THREADS)
    warehouse = store / "home" / "warehouse"
    return _write_summary(settings, warehouse, DEMO_AS_OF, DEMO_TIMEZONE, out, sample)


def _write_summary(
    settings: Any, warehouse: Path, end: datetime, timezone: str, out: Path, sample: int = 0
) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from perennial.features import summary_for_btyd
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_duckdb_backend()
    clock = Clock()
    with open_backend(settings) as backend:
        snapshot = Warehouse(warehouse).snapshot()
        expression = summary_for_btyd(
            backend, snapshot, end, unit_days=UNIT_DAYS, timezone=timezone
        )
        table = backend.to_pyarrow(expression.order_by("customer_id"))
    result = clock.stop(table.num_rows, snapshot_version=snapshot.version)
    if 0 < sample < table.num_rows:
        table = table.take(list(range(0, table.num_rows, table.num_rows // sample)))
        result["rows_out"] = table.num_rows
    pq.write_table(table, out)
    repeat = pc.greater(table["frequency"], 0)
    result["repeat_customers"] = pc.sum(repeat).as_py()
    spend = pc.filter(table["monetary_value"], repeat)
    result["repeat_without_positive_spend"] = pc.sum(pc.less_equal(spend, 0)).as_py() or 0
    return result


def _churn_settings(home: Path, memory_limit: str) -> Any:
    from perennial.config import Settings

    return Settings(home=home, duckdb_threads=THREADS, duckdb_memory_limit=memory_limit)


def churn_train(store: Path, home: Path, memory_limit: str) -> dict[str, Any]:
    """``train_churn_model`` (default purchase config) on the demo store; saved after the clock."""
    from perennial.models.churn_config import CHURN_PRESETS
    from perennial.models.churn_model import train_churn_model
    from perennial.models.registry import ModelRegistry, save_churn_model
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_duckdb_backend()
    settings = _churn_settings(home, memory_limit)
    laps = Laps()
    progress = _Progress(laps)
    with open_backend(settings) as backend:
        snapshot = Warehouse(store / "home" / "warehouse").snapshot()
        model = train_churn_model(
            backend, snapshot, CHURN_PRESETS["purchase"], timezone=DEMO_TIMEZONE, progress=progress
        )
    progress("done")
    checks = model.metadata["checks"]
    info = {k: model.metadata[k] for k in ("training_window", "best_iteration", "metrics")}
    info["rows_per_cutoff"] = checks["per_cutoff"]
    result = laps.stop(int(checks["rows"]), metadata=info)
    save_churn_model(ModelRegistry(home / "registry"), model)
    return result


class _Progress:
    """Training's progress messages as laps: each part is timed until the next message."""

    def __init__(self, laps: Laps) -> None:
        self.laps = laps
        self.current = "finding the data end"

    def __call__(self, message: str) -> None:
        self.laps.lap(self.current)
        self.current = message


def churn_score(store: Path, home: Path, memory_limit: str) -> dict[str, Any]:
    """``score_customers`` as of 2026-01-01 with the model ``churn_train`` saved."""
    from perennial.models.churn_scoring import score_customers
    from perennial.models.registry import ModelRegistry, load_churn_model
    from perennial.store.backends import open_backend
    from perennial.store.warehouse import Warehouse

    _import_duckdb_backend()
    settings = _churn_settings(home, memory_limit)
    registry = ModelRegistry(home / "registry")
    model, version = load_churn_model(registry, registry.list("churn")[-1].version)
    laps = Laps()
    with open_backend(settings) as backend:
        snapshot = Warehouse(store / "home" / "warehouse").snapshot()
        table = score_customers(
            backend, snapshot, model, DEMO_AS_OF, timezone=DEMO_TIMEZONE, version=version.version
        )
    laps.lap("score_customers")
    result = laps.stop(table.num_rows)
    bands = table.column("churn_risk_band").value_counts().to_pylist()
    result["bands"] = {b["values"]: b["counts"] for b in bands}
    return result


def _import_duckdb_backend() -> None:
    """What perennial imports lazily on first use, so import time stays out of the clock."""
    import importlib

    importlib.import_module("ibis.backends.duckdb")
    importlib.import_module("ibis.backends.duckdb.converter")


def run_one(args: argparse.Namespace) -> int:
    """Child process: one measurement or check; one JSON line on stdout."""
    kind, out = args.one, Path(args.out) if args.out else Path(os.devnull)
    summary = Path(args.summary) if args.summary else Path(os.devnull)
    params = json.loads(Path(args.params).read_text()) if args.params else {}
    children: dict[str, Callable[[], dict[str, Any]]] = {
        "ours": lambda: ours_btyd(summary, out),
        "lifetimes": lambda: lifetimes_btyd(summary, out),
        "pymc": lambda: pymc_btyd(summary, out),
        "pymc_default": lambda: pymc_btyd(summary, out, flat=False),
        "ll_ours": lambda: ll_ours(summary, params),
        "ll_peers": lambda: ll_peers(summary, params),
        "check": lambda: check_outputs(summary, out.parent, args.sides),
        "prepare_cdnow": lambda: prepare_cdnow(Path(args.home), out),
        "prepare_demo": lambda: prepare_demo(args.store, Path(args.home), out, args.demo_sample),
        "churn_train": lambda: churn_train(args.store, Path(args.home), args.memory_limit),
        "churn_score": lambda: churn_score(args.store, Path(args.home), args.memory_limit),
    }
    result = children[kind]()
    result["final_peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result, default=str))
    return 0


# --------------------------------------------------------------------------- driver


@dataclass
class Measurement:
    name: str
    result: dict[str, Any] | None = None
    failure: str | None = None
    load: tuple[float, float] = (0.0, 0.0)
    """1-minute load average before and after the run."""

    def seconds(self, step: str | None = None) -> float | None:
        if self.result is None:
            return None
        if step is None:
            return float(self.result["seconds"])
        return float(self.result["steps"].get(step, math.nan))


@dataclass
class Runner:
    """Starts ``--one`` children: ours with this interpreter, peers with the peers' one."""

    args: argparse.Namespace
    scratch: Path
    loads: list[float] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERENNIAL_")}
        env["PERENNIAL_CONFIG"] = os.devnull  # no perennial.toml from the working directory
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(THREADS)
        if self.args.source_copy is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(self.args.source_copy), env.get("PYTHONPATH", "")]
            )
        return env

    def run(self, kind: str, python: str, *extra: str, timeout: float | None = None) -> Measurement:
        command = [python, str(Path(__file__).resolve()), "--one", kind, *extra]
        command += ["--store", str(self.args.store), "--memory-limit", self.args.memory_limit]
        command += ["--demo-sample", str(self.args.demo_sample)]
        measurement = Measurement(kind)
        before = os.getloadavg()[0]
        try:
            done = subprocess.run(
                command,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            measurement.failure = f"did not finish in {timeout / 60:g} min"
        else:
            if done.returncode != 0:
                sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
                measurement.failure = f"failed (exit {done.returncode})"
            else:
                measurement.result = json.loads(done.stdout.strip().splitlines()[-1])
        measurement.load = (before, os.getloadavg()[0])
        self.loads.extend(measurement.load)
        return measurement


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        return run_one(args)
    package = _perennial_package()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-models-", dir=args.data_dir))
    args.source_copy = None
    try:
        if not args.live_src:
            args.source_copy = scratch / "src"
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(package, args.source_copy / "perennial", ignore=ignore)
        print(f"code measured: {_describe_source(package, args.source_copy)}")
        print(f"started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {_machine()}")
        print(f"peers: {_peer_versions(args.peer_python)} ({args.peer_python})", flush=True)
        return _run_all(args, Runner(args, scratch), scratch)
    finally:
        if args.keep_outputs:
            print(f"outputs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {memory:.0f} GiB; load average {load}"


def _peer_versions(python: Path) -> str:
    code = (
        "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
        "('lifetimes', 'pymc-marketing', 'pymc', 'pytensor', 'pandas', 'numpy', 'scipy')))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the peers' interpreter {python} does not work: see the docstring")
    return done.stdout.strip()


def _run_all(args: argparse.Namespace, runner: Runner, scratch: Path) -> int:
    ok = True
    for name in args.sets:
        folder = scratch / name
        folder.mkdir()
        summary = _prepare(runner, name, folder)
        if summary is None:
            ok = False
            continue
        measured = {side: _measure(runner, side, summary, folder) for side in args.sides}
        print_steps(name, measured)
        print_ratios(name, measured)
        ok &= check_log_likelihoods(runner, name, summary, folder, measured)
        ok &= check_peer_outputs(runner, summary, folder, measured)
    if args.churn:
        ok &= run_churn(runner, scratch)
    loads = runner.loads or [0.0]
    print(f"\n1-minute load average during the runs: {min(loads):.1f}-{max(loads):.1f}")
    if not ok:
        print("\nBENCHMARK FAILED: see the checks above (the comparison is not valid)")
        return 1
    return 0


def _prepare(runner: Runner, name: str, folder: Path) -> Path | None:
    summary = folder / "summary.parquet"
    extra = ["--home", str(folder / "home"), "--out", str(summary)]
    measured = runner.run(f"prepare_{name}", sys.executable, *extra)
    if measured.result is None:
        print(f"\n{name}: preparing the summary {measured.failure}")
        return None
    r = measured.result
    what = "CDNOW_master, weeks, calibration to 1997-09-30" if name == "cdnow" else (
        f"demo store {runner.args.store.name} (snapshot {r.get('snapshot_version')}), weeks, "
        "as of 2026-01-01, Asia/Shanghai days"
        + (f"; TRIAL: every k-th customer, about {runner.args.demo_sample:,}"
           if runner.args.demo_sample else "")
    )  # fmt: skip
    print(
        f"\n## {name}: {what}\nsummary_for_btyd -> Parquet in {r['seconds']:.2f} s "
        f"(peak RSS {r['peak_rss_mb']:,.0f} MB): {r['rows_out']:,} customers, "
        f"{r['repeat_customers']:,} with a repeat purchase "
        f"({r['repeat_without_positive_spend']} of them without a positive mean spend)",
        flush=True,
    )
    return summary


def _measure(runner: Runner, side: str, summary: Path, folder: Path) -> Measurement:
    python = sys.executable if side == "ours" else str(runner.args.peer_python)
    timeout = None if side == "ours" else runner.args.timeout
    extra = ["--summary", str(summary), "--out", str(folder / f"{side}.parquet")]
    measured = runner.run(side, python, *extra, timeout=timeout)
    if measured.result is None:
        print(f"{side}: {measured.failure}", flush=True)
    else:
        r = measured.result
        params = r["bgnbd"] | r["gamma_gamma"]
        (folder / f"{side}.json").write_text(json.dumps(r))
        print(
            f"{side}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:,.0f} MB; "
            + ", ".join(f"{k} {v:.6g}" for k, v in params.items()),
            flush=True,
        )
    return measured


def print_steps(name: str, measured: dict[str, Measurement]) -> None:
    sides = list(measured)
    print(f"\n{name}: seconds per step (each side in a fresh process; imports excluded)")
    print("| step | " + " | ".join(sides) + " |")
    print("|---|" + "---:|" * len(sides))
    for step in (*STEPS, None):
        cells = [_cell(m.seconds(step), m.failure) for m in measured.values()]
        print(f"| {step or '**total**'} | " + " | ".join(cells) + " |")
    rss = [_rss(m.result) if m.result else (m.failure or "") for m in measured.values()]
    print("| peak RSS MB (after imports) | " + " | ".join(rss) + " |")
    cpu = [f"{m.result['cpu_seconds']:.2f}" if m.result else "" for m in measured.values()]
    print("| CPU s | " + " | ".join(cpu) + " |")


def _cell(seconds: float | None, failure: str | None) -> str:
    if seconds is None:
        return failure or ""
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def _rss(result: dict[str, Any]) -> str:
    return f"{result['peak_rss_mb']:,.0f} ({result['rss_after_imports_mb']:,.0f})"


def print_ratios(name: str, measured: dict[str, Measurement]) -> None:
    ours = measured.get("ours")
    peers = [side for side in measured if side != "ours"]
    if ours is None or ours.result is None or not peers:
        return
    print(f"\n{name}: ours / peer per step (below 1: ours faster; in brackets: peer / ours)")
    print("| step | " + " | ".join(peers) + " |")
    print("|---|" + "---:|" * len(peers))
    for step in (*STEPS, None):
        cells = []
        for side in peers:
            theirs = measured[side].seconds(step)
            mine = ours.seconds(step)
            cells.append(
                ""
                if theirs is None or mine is None
                else f"{mine / theirs:.4f} ({theirs / mine:.1f}x)"
            )
        print(f"| {step or '**total**'} | " + " | ".join(cells) + " |")
    _print_targets(name, ours, measured)


def _print_targets(name: str, ours: Measurement, measured: dict[str, Measurement]) -> None:
    targets = {
        "lifetimes": TARGET_VS_LIFETIMES,
        "pymc": TARGET_VS_PYMC,
        "pymc_default": TARGET_VS_PYMC,
    }
    for side, target in targets.items():
        peer = measured.get(side)
        if peer is None:
            continue
        if peer.result is None:
            print(f"target {name} vs {side} (>= {target:g}x faster): not measured ({peer.failure})")
            continue
        speedups = {
            "total": peer.seconds() / ours.seconds(),  # type: ignore[operator]
            "fit (both models)": _fit(peer) / _fit(ours),
            "scoring (4 predictions)": _score(peer) / _score(ours),
        }
        text = ", ".join(f"{k} {v:.1f}x" for k, v in speedups.items())
        verdict = "met" if speedups["total"] >= target else "NOT met"
        print(f"target {name} vs {side}: >= {target:g}x faster (total): {verdict}; {text}")


def _fit(m: Measurement) -> float:
    return sum(m.seconds(step) or 0.0 for step in ("fit_bgnbd", "fit_gamma_gamma"))


def _score(m: Measurement) -> float:
    return sum(m.seconds(step) or 0.0 for step in OUTPUTS)


def check_log_likelihoods(
    runner: Runner, name: str, summary: Path, folder: Path, measured: dict[str, Measurement]
) -> bool:
    """Every side's parameters under every side's log-likelihood; peers held to LL_RTOL."""
    params = {
        side: {k: m.result[k] for k in ("bgnbd", "gamma_gamma")}
        for side, m in measured.items()
        if m.result is not None
    }
    if "ours" not in params:
        print(f"\n{name}: no log-likelihood check: ours did not run")
        return False
    params_file = folder / "params.json"
    params_file.write_text(json.dumps(params))
    extra = ["--summary", str(summary), "--params", str(params_file)]
    under_ours = runner.run("ll_ours", sys.executable, *extra)
    peers_run = set(params) - {"ours"}
    under_peers = (
        runner.run("ll_peers", str(runner.args.peer_python), *extra, timeout=runner.args.timeout)
        if peers_run
        else Measurement("ll_peers", result={})
    )
    if under_ours.result is None or under_peers.result is None:
        print(f"\n{name}: log-likelihood check failed to run")
        return False
    table = {
        side: {"ours": under_ours.result[side], **under_peers.result.get(side, {})}
        for side in params
    }
    return print_log_likelihoods(name, table, measured)


def print_log_likelihoods(
    name: str, table: dict[str, dict[str, dict[str, float]]], measured: dict[str, Measurement]
) -> bool:
    """One row per (model, side's parameters), one column per log-likelihood function."""
    functions = list(table["ours"])
    print(f"\n{name}: log-likelihood of each side's parameters under each implementation")
    print(f"(relative difference from ours' parameters in brackets; tolerance {LL_RTOL:g})")
    print("| model | parameters of | " + " | ".join(f"LL ({f})" for f in functions) + " |")
    print("|---|---|" + "---:|" * len(functions))
    ok = True
    for model in ("bgnbd", "gamma_gamma"):
        for side, values in table.items():
            cells = []
            for function in functions:
                value, reference = values[function][model], table["ours"][function][model]
                relative = abs(value - reference) / abs(reference)
                cells.append(f"{value:,.6f} ({relative:.1e})")
                if side in PEERS_HELD_TO_TOLERANCE and not relative <= LL_RTOL:
                    ok = False
                    print(f"LOG-LIKELIHOOD MISMATCH: {model}, {side} under {function}: {relative}")
            print(f"| {model} | {side} | " + " | ".join(cells) + " |")
    _print_reported_ll(measured)
    if "pymc_default" in table:
        print("pymc_default: MAP under PyMC-Marketing's default priors, not a maximum-likelihood")
        print("estimate: its log-likelihood is lower by design and is not held to the tolerance.")
    print(f"log-likelihood check: {'passed' if ok else 'FAILED'}")
    return ok


def _print_reported_ll(measured: dict[str, Measurement]) -> None:
    reported = {
        side: m.result["ll_own"]
        for side, m in measured.items()
        if m.result and "ll_own" in m.result
    }
    for side, values in reported.items():
        text = ", ".join(f"{k} {v:,.6f}" for k, v in values.items())
        print(f"log-likelihood {side} reports with its fit: {text}")
    if "lifetimes" in reported:
        print("(lifetimes fits BG/NBD in time rescaled by 10 / max T: its own figure differs from")
        print("eq. 6 in weeks by the data constant -sum(x) log(10 / max T), not by the parameters)")


def check_peer_outputs(
    runner: Runner, summary: Path, folder: Path, measured: dict[str, Measurement]
) -> bool:
    """Per-customer outputs against ours; peers held to OUTPUT_RTOL except the timed CLV,
    which differs by the month's length (4.345 weeks against 365.25 / 12 days)."""
    peers = [s for s, m in measured.items() if s != "ours" and m.result is not None]
    if not peers or measured["ours"].result is None:
        return True
    extra = ["--summary", str(summary), "--out", str(folder / "check.json")]
    checked = runner.run("check", sys.executable, *extra, "--sides", ",".join(peers))
    if checked.result is None:
        print(f"output check: {checked.failure}")
        return False
    columns = [*OUTPUTS, "clv_same_month"]
    print("\nper-customer outputs, max relative difference from ours (clv: ours with its")
    print("365.25/12-day month; clv_same_month: ours recomputed with the peers' 4.345-week month;")
    print(f"CLV left out for {checked.result['clv_left_out']} customer(s) with repeat purchases")
    print("and no positive mean spend, which ours treats as unknown spend, the peers as 0)")
    print("| side | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    ok = True
    for side in peers:
        values = checked.result[side]
        print(f"| {side} | " + " | ".join(f"{values.get(c, math.inf):.1e}" for c in columns) + " |")
        held = [c for c in columns if c != "clv"]
        if side in PEERS_HELD_TO_TOLERANCE and not all(
            values.get(c, math.inf) <= OUTPUT_RTOL for c in held
        ):
            print(f"OUTPUT MISMATCH: {side} differs from ours by more than {OUTPUT_RTOL:g}")
            ok = False
    print(f"output check (tolerance {OUTPUT_RTOL:g}): {'passed' if ok else 'FAILED'}")
    return ok


def run_churn(runner: Runner, scratch: Path) -> bool:
    home = scratch / "churn-home"
    extra = ["--home", str(home)]
    print(
        f"\n## churn on {runner.args.store.name} (DuckDB memory limit {runner.args.memory_limit})"
    )
    trained = runner.run("churn_train", sys.executable, *extra)
    scored = (
        runner.run("churn_score", sys.executable, *extra)
        if trained.result is not None
        else Measurement("churn_score", failure="not run: training failed")
    )
    print("| step | rows | s | CPU s | peak RSS MB (after imports) | load before-after |")
    print("|---|---:|---:|---:|---:|---|")
    for label, m in (("train_churn_model", trained), ("score_customers", scored)):
        if m.result is None:
            print(f"| {label} | {m.failure} | | | | |")
            continue
        r = m.result
        rss = _rss(r)
        print(
            f"| {label} | {r['rows_out']:,} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{rss} | {m.load[0]:.1f}-{m.load[1]:.1f} |"
        )
    if trained.result is not None:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in trained.result["steps"].items())
        print(f"training by part: {steps}")
        print(f"training metadata: {json.dumps(trained.result['metadata'], default=str)[:1500]}")
    if scored.result is not None:
        print(f"risk bands: {scored.result['bands']}")
    return trained.result is not None and scored.result is not None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
        def parse(text: str) -> list[str]:
            chosen = [x for x in text.split(",") if x]
            unknown = sorted(set(chosen) - set(allowed))
            if unknown:
                raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {allowed}")
            return chosen

        return parse

    parser.add_argument("--sets", type=names(SETS), default=list(SETS), help=",".join(SETS))
    parser.add_argument(
        "--sides", type=names(SIDES), default=list(DEFAULT_SIDES), help=",".join(SIDES)
    )
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="demo store (read only)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="scratch parent")
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER_PYTHON)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per peer run")
    parser.add_argument("--memory-limit", default="6GB", help="DuckDB memory_limit for churn")
    parser.add_argument(
        "--demo-sample", type=int, default=0, help="trials: about N demo customers (0: all)"
    )
    parser.add_argument("--churn", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--keep-outputs", action="store_true", help="keep the scratch folder")
    parser.add_argument("--live-src", action="store_true", help="import the working tree")
    for hidden in ("--one", "--home", "--out", "--summary", "--params"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if "ours" not in args.sides and not args.one:
        parser.error("--sides must include ours: every ratio and check is against it")
    return args


if __name__ == "__main__":
    sys.exit(main())
