# Role-local module_utils used by library/svc_echo.py (test role).
from __future__ import annotations

MARKER = 'svc-test-util-v1'


def shout(text):
    """Upper-case `text` and add a marker proving this file was shipped."""
    return '%s! (%s)' % (text.upper(), MARKER)
