"""Studies: experiments that train several runs and compare them. Their results are plain data defined here;
``nnsee.report.study`` and ``nnsee.report.standardization_study`` only render them."""

from nnsee.studies.overfit import OverfitRun, OverfitStudy, overfit_study, stratified_subset
from nnsee.studies.roar import RoarStudy, roar_study
from nnsee.studies.standardization import ModeResult, StandardizationStudy, standardization_study

__all__ = ["ModeResult", "OverfitRun", "OverfitStudy", "RoarStudy", "StandardizationStudy", "overfit_study",
           "roar_study", "standardization_study", "stratified_subset"]
