# Test-only become plugin for doas (the tests' vanilla runs need one, and
# community.general is not installed): prompts and failures as Debian's
# OpenDoas words them. ansible-svc serves the name "doas" natively.
from __future__ import annotations

DOCUMENTATION = """
    name: doas
    short_description: doas (ansible-svc tests only)
    description:
        - Runs commands as another user through doas.
    author: ansible-svc tests
    options:
        become_user:
            description: User to become.
            default: root
            vars:
              - name: ansible_become_user
            keyword:
              - name: become_user
        become_exe:
            description: The doas executable.
            default: doas
            vars:
              - name: ansible_become_exe
            keyword:
              - name: become_exe
        become_flags:
            description: Options to pass to doas.
            default: ''
            vars:
              - name: ansible_become_flags
            keyword:
              - name: become_flags
        become_pass:
            description: Password for doas.
            required: false
            vars:
              - name: ansible_become_password
              - name: ansible_become_pass
"""

from ansible.plugins.become import BecomeBase


class BecomeModule(BecomeBase):

    name = 'doas'

    # doas reads the password from the terminal, like su: vanilla must not
    # pipe the module to it.
    pipelining = False

    fail = ('Authentication failed',)
    missing = ('Authentication required',)

    def build_become_command(self, cmd, shell):
        super().build_become_command(cmd, shell)
        if not cmd:
            return cmd
        flags = self.get_option('become_flags') or ''
        if self.get_option('become_pass'):
            self.prompt = 'doas ('
        elif '-n' not in flags:
            flags += ' -n'
        return '%s %s -u %s /bin/sh -c %s' % (self.get_option('become_exe'), flags, self.get_option('become_user'),
                                              self._build_success_command(cmd, shell, noexe=True))
