"""`python -m api.cli …` is `soxara …`."""

import sys

from api.cli import main

sys.exit(main())
