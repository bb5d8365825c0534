# Stand-in for pip's get-pip.py, which ansible-test downloads from
# ci-files.testing.ansible.com: CI reaches only the package registries.
# It bootstraps pip with the standard library's ensurepip, then installs what
# ansible-test asked get-pip.py for (the pinned pip and its friends) from the
# package index, as get-pip.py would.
import ensurepip
import sys

ensurepip.bootstrap()
from pip._internal.cli.main import main  # noqa: E402  (pip exists only now)

sys.exit(main(["install"] + [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]))
