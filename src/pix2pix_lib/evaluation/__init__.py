"""Judge a translation model: score it over a dataset, write reports, and build a real/fake study page.

* :func:`evaluate` -- per-image metrics and dataset means; with ``out_dir`` also ``metrics.json``,
  ``per_image.csv`` and a self-contained ``report.html`` (input | generated | target, worst first).
* :func:`write_study_page` -- a self-contained timed "real or fake?" page for human judgements.
"""

from .evaluate import ALL_METRICS, DEFAULT_METRICS, HIGHER_IS_BETTER, evaluate
from .report import write_report
from .study import StudyTrial, build_study_trials, render_study_page, write_study_page

__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "HIGHER_IS_BETTER",
    "StudyTrial",
    "build_study_trials",
    "evaluate",
    "render_study_page",
    "write_report",
    "write_study_page",
]
