"""Predictions: buy-till-you-die models and CLV, churn risk with reasons, next order dates.

Every output becomes a plain profile field, so segments, journeys, tasks and pages use
predictions like any other column.

The names below are imported on first use (PEP 562): importing the package, as every
CLI command does, must not load LightGBM, scikit-learn and SciPy. Functions named like
their module (``category_cycles``, ``churn_reasons``) are imported from the module: the
package attribute of that name is the submodule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perennial.models.bgnbd import (
        BgNbdModel,
        fit_bgnbd,
    )
    from perennial.models.btyd_checks import (
        conditional_expectations_by_frequency,
        frequency_histogram,
        holdout_purchases,
        holdout_table,
    )
    from perennial.models.btyd_data import (
        BtydInputError,
        BtydSummary,
    )
    from perennial.models.category_cycles import (
        CategoryCycleConfig,
        CategoryCycles,
    )
    from perennial.models.churn_config import (
        ChurnConfig,
        load_churn_config,
        resolve_churn_config,
    )
    from perennial.models.churn_labels import (
        ExtraFeatures,
        InsufficientDataError,
        labelled_rows,
    )
    from perennial.models.churn_model import (
        CHURN_FEATURES,
        ChurnMetrics,
        ChurnModel,
        train_churn_model,
    )
    from perennial.models.churn_reasons import (
        ChurnReason,
    )
    from perennial.models.churn_scoring import (
        score_customers,
    )
    from perennial.models.clv import (
        clv_table,
        customer_lifetime_value,
    )
    from perennial.models.gamma_gamma import (
        GammaGammaModel,
        fit_gamma_gamma,
    )
    from perennial.models.mle import (
        ConvergenceError,
        FitReport,
        ModelFitError,
    )
    from perennial.models.next_order import (
        NextOrderConfig,
        predict_next_orders,
    )
    from perennial.models.next_order_backtest import (
        NextOrderBacktest,
        backtest_next_orders,
    )
    from perennial.models.pareto_nbd import (
        ParetoNbdModel,
        fit_pareto_nbd,
    )
    from perennial.models.registry import (
        ModelRegistry,
        ModelVersion,
        load_churn_model,
        save_churn_model,
    )

_SOURCES: dict[str, str] = {
    "BgNbdModel": "perennial.models.bgnbd",
    "BtydInputError": "perennial.models.btyd_data",
    "BtydSummary": "perennial.models.btyd_data",
    "CHURN_FEATURES": "perennial.models.churn_model",
    "CategoryCycleConfig": "perennial.models.category_cycles",
    "CategoryCycles": "perennial.models.category_cycles",
    "ChurnConfig": "perennial.models.churn_config",
    "ChurnMetrics": "perennial.models.churn_model",
    "ChurnModel": "perennial.models.churn_model",
    "ChurnReason": "perennial.models.churn_reasons",
    "ConvergenceError": "perennial.models.mle",
    "ExtraFeatures": "perennial.models.churn_labels",
    "FitReport": "perennial.models.mle",
    "GammaGammaModel": "perennial.models.gamma_gamma",
    "InsufficientDataError": "perennial.models.churn_labels",
    "ModelFitError": "perennial.models.mle",
    "ModelRegistry": "perennial.models.registry",
    "ModelVersion": "perennial.models.registry",
    "NextOrderBacktest": "perennial.models.next_order_backtest",
    "NextOrderConfig": "perennial.models.next_order",
    "ParetoNbdModel": "perennial.models.pareto_nbd",
    "backtest_next_orders": "perennial.models.next_order_backtest",
    "clv_table": "perennial.models.clv",
    "conditional_expectations_by_frequency": "perennial.models.btyd_checks",
    "customer_lifetime_value": "perennial.models.clv",
    "fit_bgnbd": "perennial.models.bgnbd",
    "fit_gamma_gamma": "perennial.models.gamma_gamma",
    "fit_pareto_nbd": "perennial.models.pareto_nbd",
    "frequency_histogram": "perennial.models.btyd_checks",
    "holdout_purchases": "perennial.models.btyd_checks",
    "holdout_table": "perennial.models.btyd_checks",
    "labelled_rows": "perennial.models.churn_labels",
    "load_churn_config": "perennial.models.churn_config",
    "load_churn_model": "perennial.models.registry",
    "predict_next_orders": "perennial.models.next_order",
    "resolve_churn_config": "perennial.models.churn_config",
    "save_churn_model": "perennial.models.registry",
    "score_customers": "perennial.models.churn_scoring",
    "train_churn_model": "perennial.models.churn_model",
}

__all__ = [
    "CHURN_FEATURES",
    "BgNbdModel",
    "BtydInputError",
    "BtydSummary",
    "CategoryCycleConfig",
    "CategoryCycles",
    "ChurnConfig",
    "ChurnMetrics",
    "ChurnModel",
    "ChurnReason",
    "ConvergenceError",
    "ExtraFeatures",
    "FitReport",
    "GammaGammaModel",
    "InsufficientDataError",
    "ModelFitError",
    "ModelRegistry",
    "ModelVersion",
    "NextOrderBacktest",
    "NextOrderConfig",
    "ParetoNbdModel",
    "backtest_next_orders",
    "clv_table",
    "conditional_expectations_by_frequency",
    "customer_lifetime_value",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_pareto_nbd",
    "frequency_histogram",
    "holdout_purchases",
    "holdout_table",
    "labelled_rows",
    "load_churn_config",
    "load_churn_model",
    "predict_next_orders",
    "resolve_churn_config",
    "save_churn_model",
    "score_customers",
    "train_churn_model",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
