# Test-only become plugin: a site's own plugin, as ansible-svc sees one (not
# sudo, su or doas by name). It runs sudo, so the tests can compare it with
# vanilla on the test sshd's accounts.
from __future__ import annotations

DOCUMENTATION = """
    name: svc_test_sudo
    short_description: sudo under another name (ansible-svc tests only)
    description:
        - Runs commands as another user through sudo, with its own prompt.
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
            description: The sudo executable.
            default: sudo
            vars:
              - name: ansible_become_exe
            keyword:
              - name: become_exe
        become_flags:
            description: Options to pass to sudo.
            default: -H -S -n
            vars:
              - name: ansible_become_flags
            keyword:
              - name: become_flags
        become_pass:
            description: Password to pass to sudo.
            required: false
            vars:
              - name: ansible_become_password
              - name: ansible_become_pass
"""

from ansible.plugins.become import BecomeBase


class BecomeModule(BecomeBase):

    name = 'svc_test_sudo'

    fail = ('Sorry, try again.',)
    missing = ('Sorry, a password is required to run sudo', 'sudo: a password is required')

    def build_become_command(self, cmd, shell):
        super().build_become_command(cmd, shell)
        if not cmd:
            return cmd
        flags = self.get_option('become_flags') or ''
        prompt = ''
        if self.get_option('become_pass'):
            self.prompt = 'svc-test-sudo %s says password:' % self._id
            flags = flags.replace('-n', '')
            prompt = '-p "%s"' % self.prompt
        user = '-u %s' % self.get_option('become_user')
        return ' '.join([self.get_option('become_exe'), flags, prompt, user, self._build_success_command(cmd, shell)])
