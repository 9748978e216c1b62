"""Judge a translation model: score it over a dataset, write reports, and build a real/fake study page.

* :func:`evaluate` -- per-image metrics (see :data:`pix2pix_lib.metrics.METRICS`) and dataset means;
  with ``out_dir`` also ``metrics.json``, ``per_image.csv`` and a self-contained ``report.html``
  (input | generated | target, worst first).
* :func:`write_study_page` -- a self-contained timed "real or fake?" page for human judgements.
"""

from .evaluate import evaluate
from .report import write_report
from .study import StudyTrial, build_study_trials, render_study_page, write_study_page

__all__ = ["StudyTrial", "build_study_trials", "evaluate", "render_study_page", "write_report", "write_study_page"]
