"""`python -m seqzoo.serving.cli` runs the `seqzoo` command."""

import sys

from seqzoo.serving.cli import main

sys.exit(main())
