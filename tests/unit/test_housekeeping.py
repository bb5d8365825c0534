"""Housekeeping commands done without a shell give what the shell gives:
each command line (as ansible-core's sh plugin builds it) runs once through
housekeeping.run and once through /bin/sh on a twin directory tree."""
from __future__ import annotations

import os
import shlex
import stat
import subprocess

import pytest
from ansible.plugins.loader import shell_loader

from ansible_svc.controller import compat
from ansible_svc.target import housekeeping


@pytest.fixture(scope='module')
def sh():
    plugin = shell_loader.get('sh')
    plugin.set_options()
    return plugin


def wrap(inner):
    # What ActionBase._low_level_execute_command hands the connection.
    # (the suffix per core comes from compat; test_compat_contract.py checks
    # it against the commands the installed core really runs)
    return '/bin/sh -c ' + shlex.quote(inner + compat.adapter().shell_suffix)


def shell(cmd):
    proc = subprocess.run(['/bin/sh', '-c', cmd], capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr


def tree(root):
    """{relative path: (kind, permission bits)} under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = ('dir' if stat.S_ISDIR(st.st_mode) else 'file', stat.S_IMODE(st.st_mode))
    return out


def both(tmp_path, make_cmd, prepare=lambda root: None):
    """Run make_cmd(root) natively in one tree and by /bin/sh in a twin."""
    results = {}
    for how in ('native', 'shell'):
        root = tmp_path / how
        root.mkdir(parents=True)
        prepare(root)
        cmd = make_cmd(str(root))
        if how == 'native':
            done = housekeeping.run(cmd)
            assert done is not None, 'not recognized: %s' % cmd
        else:
            done = shell(cmd)
        out = done[1].replace(str(root).encode(), b'ROOT')
        results[how] = (done[0], out, done[2], tree(root))
    assert results['native'] == results['shell']
    return results['native']


def test_expand_user(sh):
    for path, user in (('~', ''), ('~', 'root'), ('~', 'no-such-user-svc')):
        cmd = wrap(sh.expand_user(path, username=user))
        assert housekeeping.run(cmd) == shell(cmd), cmd


def test_mkdtemp(sh, tmp_path):
    rc, out, _, made = both(tmp_path, lambda root: wrap(sh.mkdtemp(basefile='ansible-tmp-1.2-3-4', tmpdir=root + '/a/b')))
    assert rc == 0 and out == b'ansible-tmp-1.2-3-4=ROOT/a/b/ansible-tmp-1.2-3-4\n'
    assert made['a/b/ansible-tmp-1.2-3-4'] == ('dir', 0o700)


def test_mkdtemp_other_mode(sh, tmp_path):
    both(tmp_path, lambda root: wrap(sh.mkdtemp(basefile='t', tmpdir=root, mode=0o755)))


def test_chmod(sh, tmp_path):
    def prepare(root):
        (root / 'd').mkdir(mode=0o600)
        (root / 'd' / 'f').write_text('x')
        os.chmod(root / 'd' / 'f', 0o400)
        os.chmod(root / 'd', 0o700)
    for mode in ('u+rwx', 'u+x'):
        both(tmp_path / mode, lambda root: wrap(sh.chmod([root + '/d/', root + '/d/f'], mode)), prepare)


def test_remove(sh, tmp_path):
    def prepare(root):
        (root / 'd' / 'e').mkdir(parents=True)
        (root / 'd' / 'e' / 'f').write_text('x')
        (root / 'g').write_text('x')
    both(tmp_path / 'r', lambda root: wrap(sh.remove(root + '/d/', recurse=True)), prepare)
    both(tmp_path / 'f', lambda root: wrap(sh.remove(root + '/g')), prepare)
    both(tmp_path / 'm', lambda root: wrap(sh.remove(root + '/missing', recurse=True)), prepare)


@pytest.mark.parametrize('cmd', [
    wrap('echo $HOME'),
    wrap('echo ~/a b'),
    wrap("echo '~/x/y'"),  # what expand_user('~/x/y') builds: quoted
    wrap('chmod u+rwx relative/path'),
    wrap('chmod a+r /tmp/x'),
    wrap('rm -f -r "/tmp/with space" > /dev/null 2>&1'),
    wrap('rm -f -r /tmp/* > /dev/null 2>&1'),
    wrap('( umask 77 && mkdir -p "` echo $HOME/.ansible/tmp `"&& mkdir "` echo $HOME/x `" && echo x="` echo $HOME/x `" )'),
    wrap('ls /'),
    '/bin/sh -c ' + shlex.quote('echo ~'),  # no "&& sleep 0": still recognized
])
def test_everything_else_goes_to_the_shell(cmd):
    if cmd.endswith(shlex.quote('echo ~')):
        assert housekeeping.run(cmd) == shell(cmd)
    else:
        assert housekeeping.run(cmd) is None


def test_errors_go_to_the_shell(sh, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    assert housekeeping.run(wrap(sh.mkdtemp(basefile='t', tmpdir=str(blocker)))) is None
    assert housekeeping.run(wrap(sh.chmod([str(tmp_path / 'missing')], 'u+x'))) is None


def test_mkdtemp_never_sets_the_process_umask(tmp_path, monkeypatch):
    """The umask is shared by the interpreter's threads: a task process
    forked while another thread had set `umask 77` kept it (a copy's file
    came out 0600). The temp dirs still get the modes the shell would give."""
    def no_umask(_):
        raise AssertionError('os.umask called')
    monkeypatch.setattr(housekeeping.os, 'umask', no_umask)
    base, path = tmp_path / 'a' / 'tmp', tmp_path / 'a' / 'tmp' / 'ansible-tmp-1'
    cmd = f'( umask 77 && mkdir -p "` echo {base} `"&& mkdir "` echo {path} `" && echo ansible-tmp-1="` echo {path} `" )'
    assert housekeeping.run(cmd) is not None
    for d in (tmp_path / 'a', base, path):
        assert oct(d.stat().st_mode & 0o777) == oct(0o700), d
    assert housekeeping.current_umask() == int(open('/proc/self/status').read().split('Umask:')[1].split()[0], 8)
