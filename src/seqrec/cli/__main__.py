"""``python -m seqrec.cli``: the ``seqrec`` command."""

import sys

from seqrec.cli.app import main

sys.exit(main())
