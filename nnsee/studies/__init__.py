"""Studies: experiments that train several runs and compare them."""

from nnsee.studies.overfit import OverfitRun, OverfitStudy, overfit_study, stratified_subset

__all__ = ["OverfitRun", "OverfitStudy", "overfit_study", "stratified_subset"]
