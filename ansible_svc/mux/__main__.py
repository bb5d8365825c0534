"""Entry point of the mux process: ``python -m ansible_svc.mux``."""

import sys

from ansible_svc.mux.server import main

sys.exit(main())
