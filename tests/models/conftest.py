"""The CDNOW cohort for the BTYD tests: ingested once per session, summarised in weeks."""

from __future__ import annotations

import pyarrow as pa
import pytest

from perennial.config import Settings
from perennial.models.bgnbd import BgNbdModel, fit_bgnbd
from perennial.models.btyd_data import BtydSummary
from perennial.models.gamma_gamma import GammaGammaModel, fit_gamma_gamma
from perennial.models.pareto_nbd import ParetoNbdModel, fit_pareto_nbd
from tests.models.cdnow import CALIBRATION_END, HOLDOUT_END, cdnow_summary, ingest_cdnow


@pytest.fixture(scope="session")
def cdnow_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A store holding the 2,357-customer CDNOW sample."""
    return ingest_cdnow(tmp_path_factory.mktemp("cdnow") / "home")


@pytest.fixture(scope="session")
def cdnow_calibration_table(cdnow_settings: Settings) -> pa.Table:
    """``summary_for_btyd`` through 1997-09-30 (39 weeks), as a pyarrow table."""
    return cdnow_summary(cdnow_settings, CALIBRATION_END)


@pytest.fixture(scope="session")
def cdnow_calibration(cdnow_calibration_table: pa.Table) -> BtydSummary:
    return BtydSummary.from_arrow(cdnow_calibration_table)


@pytest.fixture(scope="session")
def cdnow_whole_period(cdnow_settings: Settings) -> BtydSummary:
    """The summary through 1998-06-30 (78 weeks): calibration plus holdout."""
    return BtydSummary.from_arrow(cdnow_summary(cdnow_settings, HOLDOUT_END))


@pytest.fixture(scope="session")
def cdnow_bgnbd(cdnow_calibration: BtydSummary) -> BgNbdModel:
    return fit_bgnbd(cdnow_calibration)


@pytest.fixture(scope="session")
def cdnow_pareto_nbd(cdnow_calibration: BtydSummary) -> ParetoNbdModel:
    return fit_pareto_nbd(cdnow_calibration)


@pytest.fixture(scope="session")
def cdnow_gamma_gamma(cdnow_calibration: BtydSummary) -> GammaGammaModel:
    return fit_gamma_gamma(cdnow_calibration)
