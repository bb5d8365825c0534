"""Container specs and the exec command lines their interpreters start with."""
import pytest

from ansible_svc.controller import spec
from ansible_svc.mux import containers


def test_podman_spec_and_command_line_follow_the_vanilla_plugins_options():
    opts = {'remote_addr': 'web1', 'remote_user': 'app', 'podman_executable': '/opt/podman',
            'podman_extra_args': '--remote --url unix:///run/p.sock', 'extra_env_vars': {'A': 1, 'B': 'x y'},
            'working_directory': '/srv', 'container_timeout': 0, 'python_interpreter': 'auto'}
    s = spec.container_spec('podman', opts.get)
    assert s['timeout'] == spec.CONTAINER_TIMEOUT and s['default_python'] is None and s['via'] == []
    assert containers.exec_argv(s) == [
        '/opt/podman', '--remote', '--url', 'unix:///run/p.sock', 'exec', '--interactive', '--user', 'app',
        '--env', 'A=1', '--env', 'B=x y', '--workdir', '/srv', '--', 'web1']


def test_docker_spec_and_command_line():
    opts = {'remote_addr': 'db', 'docker_extra_args': '-H unix:///d.sock', 'privileged': True, 'container_timeout': 7}
    s = spec.container_spec('docker', opts.get)
    assert s['timeout'] == 7
    assert containers.exec_argv(s) == ['docker', '-H', 'unix:///d.sock', 'exec', '--interactive', '--privileged',
                                       '--', 'db']
    opts['docker_executable'] = '/usr/local/bin/docker'
    assert containers.exec_argv(spec.container_spec('docker', opts.get))[0] == '/usr/local/bin/docker'


def test_chroot_command_line_takes_no_user():
    s = spec.container_spec('chroot', {'remote_addr': '/srv/root', 'chroot_exe': '/usr/sbin/chroot',
                                       'remote_user': 'ignored'}.get)
    assert s['user'] is None
    assert containers.exec_argv(s) == ['/usr/sbin/chroot', '/srv/root']


@pytest.mark.parametrize('method', ['sudo', 'su'])
def test_podmans_own_privilege_escalation_is_refused_by_name(method):
    from ansible.errors import AnsibleError

    with pytest.raises(AnsibleError, match='ansible_podman_privilege_escalation=%s' % method):
        spec.container_spec('podman', {'remote_addr': 'c', 'privilege_escalation_method': method}.get)
    spec.container_spec('podman', {'remote_addr': 'c', 'privilege_escalation_method': 'none'}.get)


def test_a_container_interpreter_is_named_after_its_tool_and_container():
    conn = containers.ExecConnection.__new__(containers.ExecConnection)
    conn.options = containers.Options(exec_argv=['/usr/bin/podman', 'exec', '--interactive', '--', 'web1'],
                                      max_message_size=1, old_router=None)
    assert conn._get_name() == 'podman.web1'
