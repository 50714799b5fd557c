"""`python -m mlc`: the `mlc` command (`mlc.tools`)."""

import sys

from mlc.tools import main

sys.exit(main())
