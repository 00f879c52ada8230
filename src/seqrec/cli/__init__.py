"""The ``seqrec`` command line: thin adapters over the library.

Only this package parses ``argv``. One module per subcommand holds its ``add_parser`` and
its handler side by side (:mod:`~seqrec.cli.demo`, :mod:`~seqrec.cli.run` for ``run`` /
``train``, :mod:`~seqrec.cli.stats`, :mod:`~seqrec.cli.evaluate`,
:mod:`~seqrec.cli.recommend`); :mod:`~seqrec.cli.app` builds the parser, sets up logging and
maps errors to exit codes; :mod:`~seqrec.cli._common` has the shared helpers. Every error
seqrec raises on purpose (and bad configs, missing files) is printed as
``seqrec: error: <message>`` with exit status 2, without a traceback unless ``--debug`` is
given.
"""

from __future__ import annotations

from seqrec.batch import recommend_file
from seqrec.cli.app import build_parser, main
from seqrec.cli.demo import demo_configs

__all__ = ["build_parser", "demo_configs", "main", "recommend_file"]
