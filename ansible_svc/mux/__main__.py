"""Entry point of the mux process: ``python -m ansible_svc.mux``."""

from ansible_svc.mux.server import main

main()
