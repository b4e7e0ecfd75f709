"""Maximum likelihood shared by the BTYD models: optimise log-parameters, check, report.

Every parameter of BG/NBD, Pareto/NBD and Gamma-Gamma is positive, so the optimiser
works on their logarithms (no constraint to violate), boxed to |log| <= 25 so a
runaway parameter shows as "ran to its bound" instead of overflowing. scipy's L-BFGS-B
does the search (with the model's analytic gradient when it has one, central
differences otherwise), then Newton steps on the observed information (the negated
Hessian, by central differences of the gradient in log space) polish the point. The
result is accepted only when no parameter sits on its bound, the Hessian is negative
definite and the Newton decrement g' H^-1 g (twice the log-likelihood still to gain,
per customer) is below 1e-10: a criterion that, unlike a gradient tolerance, does not
depend on how curved the likelihood is. Standard errors come from the inverse of the
observed information through the delta method: se(theta) = theta * se(log theta).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from perennial.errors import PerennialError
from perennial.models.btyd_data import BtydSummary, FloatArray

__all__ = [
    "LOG_PARAMETER_BOUND",
    "ConvergenceError",
    "FitReport",
    "GradientObjective",
    "MleOutcome",
    "ModelFitError",
    "ValueObjective",
    "dot",
    "maximize_log_likelihood",
    "model_document",
    "read_model_document",
    "require_fittable",
    "require_positive_parameters",
]

LOG_PARAMETER_BOUND = 25.0
"""Parameters live in [exp(-25), exp(25)]: past that the data do not identify them."""

GradientObjective = Callable[[FloatArray], tuple[float, FloatArray]]
"""log-parameters -> (total log-likelihood, its gradient in log-parameters)."""
ValueObjective = Callable[[FloatArray], float]
"""log-parameters -> total log-likelihood, for models without an analytic gradient."""

_DECREMENT_TOLERANCE = 1e-10
_NOT_A_MAXIMUM = "the log-likelihood is not at a maximum (the Hessian is not negative definite)"
_NEWTON_STEPS = 5
_FINITE_DIFFERENCE_STEP = 1e-5
_HESSIAN_STEP = 1e-4


class ModelFitError(PerennialError):
    """A model cannot be fitted to these data (nothing to fit, or not identified)."""


class ConvergenceError(ModelFitError):
    """The optimiser did not reach a maximum: no estimates are returned."""


@dataclass(frozen=True)
class FitReport:
    """How a fit went: the log-likelihood, standard errors and convergence, for a registry."""

    log_likelihood: float
    standard_errors: dict[str, float]
    n_customers: int
    converged: bool
    iterations: int
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats, ints, strings and dicts."""
        return {
            "log_likelihood": self.log_likelihood,
            "standard_errors": dict(self.standard_errors),
            "n_customers": self.n_customers,
            "converged": self.converged,
            "iterations": self.iterations,
            "message": self.message,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> FitReport:
        """Inverse of :meth:`to_dict`; a malformed document raises :class:`ModelFitError`."""
        try:
            return cls(
                log_likelihood=float(document["log_likelihood"]),
                standard_errors={k: float(v) for k, v in document["standard_errors"].items()},
                n_customers=int(document["n_customers"]),
                converged=bool(document["converged"]),
                iterations=int(document["iterations"]),
                message=str(document.get("message", "")),
                extra={k: float(v) for k, v in document.get("extra", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelFitError(f"malformed fit report: {error!r}") from error


@dataclass(frozen=True)
class MleOutcome:
    """Estimates and standard errors on the natural scale, and whether every check passed."""

    estimates: dict[str, float]
    standard_errors: dict[str, float]
    iterations: int
    converged: bool
    message: str


def maximize_log_likelihood(
    objective: GradientObjective | ValueObjective,
    start: Mapping[str, float],
    *,
    model: str,
    n_customers: float,
    has_gradient: bool,
    require_convergence: bool = True,
) -> MleOutcome:
    """Maximise a total log-likelihood over log-parameters starting at ``start``.

    The optimiser sees the mean over ``n_customers`` (so tolerances do not depend on
    the data's size); standard errors use the total. When the fit fails a check this
    raises :class:`ConvergenceError` saying which, unless ``require_convergence`` is
    false: then it returns the last point with ``converged=False`` and the reason.
    """
    names = tuple(start)
    per_customer = 1.0 / max(float(n_customers), 1.0)
    mean = _MeanObjective(objective, per_customer, has_gradient)
    standard_errors: dict[str, float] = {}
    # L-BFGS-B's small LAPACK calls wake OpenBLAS's thread pool on every step; on a busy
    # 2-core machine that doubled a million-customer fit. One thread is all it needs.
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        point, iterations = _search(mean, np.log([start[n] for n in names]))
        problem = _boundary_problem(point, names)
        if problem is None:
            point, information, problem = _polish(mean, point)
            if information is not None:
                covariance = np.linalg.inv(information / per_customer)
                errors = np.exp(point) * np.sqrt(np.diag(covariance))
                standard_errors = dict(zip(names, errors.tolist(), strict=True))
    if problem is not None and require_convergence:
        raise ConvergenceError(f"{model} did not converge: {problem}")
    estimates = dict(zip(names, np.exp(point).tolist(), strict=True))
    return MleOutcome(
        estimates, standard_errors, iterations, problem is None, problem or "converged"
    )


def model_document(
    model: str, parameters: Mapping[str, float], fit: FitReport | None
) -> dict[str, Any]:
    """The JSON form every fitted model shares: its kind, parameters and fit report."""
    return {
        "model": model,
        "params": {name: float(value) for name, value in parameters.items()},
        "fit": None if fit is None else fit.to_dict(),
    }


def read_model_document(
    document: Mapping[str, Any], model: str, names: Sequence[str]
) -> tuple[dict[str, float], FitReport | None]:
    """Parameters and fit report from :func:`model_document` output, checked for ``model``."""
    if document.get("model") != model:
        raise ModelFitError(f"expected a {model} document, got model {document.get('model')!r}")
    params = document.get("params") or {}
    missing = [name for name in names if name not in params]
    if missing:
        raise ModelFitError(f"{model} document lacks parameter(s) {', '.join(missing)}")
    try:
        parameters = {name: float(params[name]) for name in names}
    except (TypeError, ValueError) as error:
        raise ModelFitError(f"{model} document has a non-numeric parameter: {error}") from error
    require_positive_parameters(model, parameters)
    fit = document.get("fit")
    return parameters, None if fit is None else FitReport.from_dict(fit)


def dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product of two vectors without BLAS.

    ``a @ b`` on long vectors wakes OpenBLAS's thread pool, whose spinning threads then
    slow every following numpy call on a busy 2-core machine (a Gamma-Gamma fit on a
    million customers took 9x longer). einsum's own loop is as fast single-threaded.
    """
    return float(np.einsum("i,i->", a, b))


def require_fittable(summary: BtydSummary, *, model: str, parameters: int, dropout: str) -> None:
    """Refuse summaries that cannot identify a count model, before any optimising.

    Nobody with a repeat purchase leaves the dropout parameters (``dropout``) free;
    fewer distinct (x, t_x, T) rows than parameters leave the model free.
    """
    n = len(summary)
    if n == 0:
        raise ModelFitError(f"{model} needs customers: the summary is empty")
    if not np.any(summary.frequency > 0):
        raise ModelFitError(
            f"{model} cannot identify the dropout parameters {dropout}: none of the {n} "
            "customers made a repeat purchase (every frequency is 0)"
        )
    distinct = len(summary.compressed)
    if distinct < parameters:
        raise ModelFitError(
            f"{model} has {parameters} parameters but the {n} customers have only {distinct} "
            "distinct (frequency, recency, T) rows: the parameters cannot be identified"
        )


def require_positive_parameters(model: str, parameters: Mapping[str, float]) -> None:
    """Refuse parameters a model cannot use (from a document or a caller) with a clear error."""
    for name, value in parameters.items():
        if not (np.isfinite(value) and value > 0):
            raise ModelFitError(
                f"{model}: parameter {name} = {value!r} must be positive and finite"
            )


class _MeanObjective:
    """The mean log-likelihood per customer and its gradient (analytic or central)."""

    def __init__(
        self, objective: GradientObjective | ValueObjective, factor: float, has_gradient: bool
    ) -> None:
        self._objective = objective
        self._factor = factor
        self.has_gradient = has_gradient

    def value(self, z: FloatArray) -> float:
        if self.has_gradient:
            value, _ = self._objective(z)  # type: ignore[misc]
        else:
            value = self._objective(z)
        return float(value) * self._factor

    def gradient(self, z: FloatArray) -> FloatArray:
        if self.has_gradient:
            return np.asarray(self._objective(z)[1], dtype=np.float64) * self._factor  # type: ignore[index]
        steps = _FINITE_DIFFERENCE_STEP * np.eye(len(z))
        return np.array(
            [(self.value(z + h) - self.value(z - h)) / (2 * _FINITE_DIFFERENCE_STEP) for h in steps]
        )

    def negated(self, z: FloatArray) -> Any:
        """What the minimiser sees: -value (huge where not finite), and -gradient."""
        if self.has_gradient:
            value, grad = self._objective(z)  # type: ignore[misc]
            return _finite_or_huge(-value * self._factor), np.nan_to_num(-grad * self._factor)
        return _finite_or_huge(-self.value(z))

    def hessian(self, z: FloatArray) -> FloatArray:
        """Central differences of the gradient, symmetrised."""
        k = len(z)
        columns = []
        for step in _HESSIAN_STEP * np.eye(k):
            columns.append(
                (self.gradient(z + step) - self.gradient(z - step)) / (2 * _HESSIAN_STEP)
            )
        hessian = np.column_stack(columns)
        return np.asarray((hessian + hessian.T) / 2, dtype=np.float64)


def _search(mean: _MeanObjective, start: FloatArray) -> tuple[FloatArray, int]:
    result = minimize(
        mean.negated,
        start,
        jac=True if mean.has_gradient else (lambda z: -mean.gradient(z)),
        method="L-BFGS-B",
        bounds=[(-LOG_PARAMETER_BOUND, LOG_PARAMETER_BOUND)] * len(start),
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
    )
    return np.asarray(result.x, dtype=np.float64), int(result.nit)


def _polish(
    mean: _MeanObjective, point: FloatArray
) -> tuple[FloatArray, FloatArray | None, str | None]:
    """Newton steps until the decrement is negligible: (point, information, problem)."""
    decrement = float("inf")
    for _ in range(_NEWTON_STEPS):
        gradient = mean.gradient(point)
        information = -mean.hessian(point)
        if not (np.all(np.isfinite(gradient)) and np.all(np.isfinite(information))):
            return point, None, "the log-likelihood is not finite at the last point"
        if np.linalg.eigvalsh(information).min() <= 0:
            return point, None, _NOT_A_MAXIMUM
        step = np.asarray(np.linalg.solve(information, gradient), dtype=np.float64)
        decrement = float(gradient @ step)
        if decrement < _DECREMENT_TOLERANCE:
            return point, information, None
        improved = _damped_step(mean, point, step)
        if improved is None:
            return point, None, _stuck(decrement)
        point = improved
    return point, None, f"the log-likelihood still rises (Newton decrement {decrement:.2g})"


def _stuck(decrement: float) -> str:
    return (
        f"no Newton step raises the log-likelihood (decrement {decrement:.2g} per customer): "
        "the maximum is probably at a boundary the data do not identify"
    )


def _damped_step(mean: _MeanObjective, point: FloatArray, step: FloatArray) -> FloatArray | None:
    """The Newton step, halved until it does not lower the log-likelihood (None if never)."""
    current = mean.value(point)
    for halving in range(20):
        candidate = np.clip(point + step / 2**halving, -LOG_PARAMETER_BOUND, LOG_PARAMETER_BOUND)
        if mean.value(candidate) >= current:
            return np.asarray(candidate, dtype=np.float64)
    return None


def _finite_or_huge(value: float) -> float:
    return float(value) if np.isfinite(value) else 1e300


def _boundary_problem(log_parameters: FloatArray, names: Sequence[str]) -> str | None:
    at_bound = np.abs(log_parameters) >= LOG_PARAMETER_BOUND - 1e-3
    if not at_bound.any():
        return None
    runaway = [
        f"{name} ran to {'infinity' if z > 0 else 'zero'}"
        for name, z, hit in zip(names, log_parameters, at_bound, strict=True)
        if hit
    ]
    return f"{', '.join(runaway)}: the data do not identify the model"
