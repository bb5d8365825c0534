"""The doctor's wording (``ansible_svc.controller.doctor``, pure functions)
and the mux's read-only summaries behind it: what they say, and that no
secret reaches them."""
from __future__ import annotations

import mitogen.core
import pytest

from ansible_svc.controller import doctor
from ansible_svc.mux import connections
from ansible_svc.mux.connections import ConnectionService, Entry
from ansible_svc.mux.doctor import DoctorService, pushed_summary
from ansible_svc.mux.files import GrantedFileService
from ansible_svc.mux.jobs import JobResultService
from ansible_svc.target.filecache import PushFileCache

SSH = {'transport': 'ssh', 'host': '10.0.0.5', 'port': 2222, 'user': 'deploy', 'via': []}


# -- verdict -------------------------------------------------------------------

def _verdict(**kwargs):
    settings = dict(ours=True, switched_off=False, disabled=False, plugin='svc_ssh', requested='ssh',
                    strategy='svc_linear', strategy_mux=True, vanilla_plugin='ansible.builtin.ssh')
    settings.update(kwargs)
    return doctor.verdict(**settings)


def test_served_by_the_strategy_names_the_redirect():
    assert _verdict() == (True, 'strategy', 'strategy svc_linear serves connection ssh with svc_ssh')
    served, mode, reason = _verdict(plugin='ansible_svc.accel.svc_ssh', requested='ansible.builtin.ssh',
                                    strategy='ansible_svc.accel.svc_linear')
    assert (served, mode) == (True, 'strategy')
    assert reason == 'strategy ansible_svc.accel.svc_linear serves connection ansible.builtin.ssh with svc_ssh'


def test_served_in_a_later_play_of_another_strategy():
    assert _verdict(strategy='linear') == (
        True, 'strategy', "connection ssh is served by svc_ssh: the svc_* strategy of an earlier play set this run "
                          "up (this play's strategy is linear)")


def test_our_connection_named_under_our_strategy():
    assert _verdict(requested='svc_ssh') == (True, 'strategy', 'connection svc_ssh, under strategy svc_linear')


def test_served_in_connection_mode():
    assert _verdict(plugin='ansible_svc.accel.svc_local', requested='ansible_svc.accel.svc_local', strategy='linear',
                    strategy_mux=False) == (
        True, 'connection', 'connection svc_local is set for this host (connection mode, strategy linear)')


def test_switched_off_connection():
    assert _verdict(switched_off=True, disabled=True, strategy_mux=False) == (
        False, 'off', 'ANSIBLE_SVC_DISABLE is set: svc_ssh hands every operation to ansible.builtin.ssh')


def test_disabled_strategy():
    assert _verdict(ours=False, disabled=True, plugin='ssh', strategy_mux=False) == (
        False, 'off', "ANSIBLE_SVC_DISABLE is set: connection ssh runs vanilla and strategy svc_linear runs as "
                      "Ansible's own")
    assert _verdict(ours=False, disabled=True, plugin='ssh', strategy='free', strategy_mux=False)[2] == (
        'ANSIBLE_SVC_DISABLE is set: connection ssh runs vanilla')


@pytest.mark.parametrize('requested,strategy,fix', [
    ('ssh', 'linear', 'use strategy svc_linear, or ansible_connection svc_ssh for this host'),
    ('ansible.builtin.local', 'free', 'use strategy svc_free, or ansible_connection svc_local for this host'),
    ('community.docker.docker', 'host_pinned', 'use strategy svc_host_pinned, or ansible_connection svc_docker'),
    ('smart', 'my.own.strategy', 'use strategy svc_linear, or ansible_connection svc_ssh'),
])
def test_a_connection_we_serve_under_a_stock_strategy_says_what_to_change(requested, strategy, fix):
    served, mode, reason = _verdict(ours=False, plugin=requested, requested=requested, strategy=strategy,
                                    strategy_mux=False)
    assert (served, mode) == (False, 'vanilla')
    assert reason.startswith('connection %s under strategy %s' % (requested, strategy)), reason
    assert fix in reason


def test_a_connection_we_do_not_serve():
    served, mode, reason = _verdict(ours=False, plugin='ansible.builtin.winrm', requested='winrm')
    assert (served, mode) == (False, 'vanilla')
    assert reason == ('connection winrm is not one ansible-svc serves (it serves ssh, local, podman, docker and '
                      'chroot): it runs vanilla')


# -- chain -----------------------------------------------------------------------

@pytest.mark.parametrize('spec,local_user,expected', [
    (SSH, None, ['ssh deploy@10.0.0.5:2222']),
    ({'transport': 'local', 'host': 'localhost', 'user': 'bob'}, None, ['local (the controller) as bob']),
    ({'transport': 'ssh', 'host': 'web1', 'port': None, 'user': None}, None, ['ssh web1']),
    ({'transport': 'ssh', 'host': 'fd00::5', 'port': 22, 'user': 'ops'}, None, ['ssh ops@[fd00::5]:22']),
    (dict(SSH, via=[{'host': 'bastion', 'port': 22, 'user': 'ops'}, {'host': 'fd00::1', 'port': 2200, 'user': 'ops'}],
          become={'method': 'sudo', 'user': 'app', 'password': mitogen.core.Secret('hunter2')}),
     None, ['ssh ops@bastion:22', 'ssh ops@[fd00::1]:2200', 'ssh deploy@10.0.0.5:2222', 'sudo as app']),
    ({'transport': 'local', 'host': 'localhost'}, 'alice', ['local (the controller) as alice']),
    ({'transport': 'local', 'host': 'localhost', 'become': {'method': 'community.general.machinectl', 'user': None}},
     None, ['local (the controller)', 'machinectl as root']),
    ({'transport': 'podman', 'host': 'web', 'user': 'app'}, None, ['podman container web as app']),
    ({'transport': 'docker', 'host': 'db', 'user': None}, None, ['docker container db']),
    ({'transport': 'chroot', 'host': '/srv/root', 'user': None}, None, ['chroot /srv/root']),
])
def test_chain(spec, local_user, expected):
    assert doctor.chain(spec, local_user) == expected


def test_addresses_name_the_host_and_its_bastions():
    spec = dict(SSH, via=[{'host': 'bastion', 'port': 22, 'user': 'ops'}])
    assert doctor.addresses(spec) == [['ssh', '10.0.0.5', 2222], ['ssh', 'bastion', 22]]
    assert doctor.addresses({'transport': 'local', 'host': 'localhost'}) == [['local', 'localhost', None]]


def test_numbers():
    assert doctor.median_ms([0.003, 0.001, 0.0020004]) == 2.0
    assert doctor.median_ms([]) is None
    assert [doctor.size_text(n) for n in (0, 1023, 1024, 5 * 1024 * 1024 + 1, 3 * 1024 ** 3)] == [
        '0 B', '1023 B', '1.0 KiB', '5.0 MiB', '3072.0 MiB']


# -- format_lines ------------------------------------------------------------------

MUX = {
    'pid': 4242,
    'interpreters': {'count': 3, 'listed': [
        dict(SSH, become=None, name='ssh.10.0.0.5:2222', python='/usr/bin/python3', version='3.11.2', pid=100,
             started_as='/usr/bin/python3', requested=['(any)', '/usr/bin/python3', 'python3'], refs=0),
        dict(SSH, become={'method': 'sudo', 'user': 'app'}, name='sudo.app', python='/usr/bin/python3',
             version='3.11.2', pid=101, started_as='/usr/bin/python3', requested=['/usr/bin/python3'], refs=1),
    ]},
    'files': {'cached': 2, 'cached_bytes': 3 * 1024 * 1024, 'grants': 1},
    'jobs': {'running': 1, 'held': 1, 'parked': 0, 'delivered': 4, 'refused': 0},
}


def test_format_a_served_host():
    report = {'served': True, 'reason': 'strategy svc_linear serves connection ssh with svc_ssh',
              'chain': ['ssh deploy@10.0.0.5:2222', 'sudo as app'],
              'python': {'executable': '/usr/bin/python3', 'version': '3.11.2', 'implementation': 'CPython',
                         'pid': 101, 'uid': 1001},
              'round_trip_ms': 0.42, 'round_trip_of': '5 no-op calls to the interpreter', 'mux': MUX}
    assert doctor.format_lines('web1', report) == [
        'web1: served by ansible-svc',
        '  why:         strategy svc_linear serves connection ssh with svc_ssh',
        '  chain:       ssh deploy@10.0.0.5:2222 -> sudo as app',
        '  interpreter: /usr/bin/python3, Python 3.11.2 (CPython), pid 101, uid 1001',
        '  round trip:  0.42 ms (median of 5 no-op calls to the interpreter)',
        '  mux:         pid 4242, 3 interpreters cached, 2 for this host and its bastions:',
        '    ssh deploy@10.0.0.5:2222: /usr/bin/python3 (Python 3.11.2), pid 100, started as /usr/bin/python3, '
        'also asked as (any), python3, 0 in use',
        '    ssh deploy@10.0.0.5:2222 -> sudo as app: /usr/bin/python3 (Python 3.11.2), pid 101, started as '
        '/usr/bin/python3, 1 in use',
        '  mux files:   2 module files cached (3.0 MiB), 1 file grant open',
        '  mux jobs:    1 running, 1 result held, 0 parked, 0 refused',
    ]


def test_format_a_host_not_served():
    report = {'served': False, 'reason': 'connection ssh under strategy linear, which is Ansible\'s own: ...',
              'chain': ['ssh web1'], 'python': {'executable': '/usr/bin/python3', 'version': '3.9.2'},
              'round_trip_ms': 31.5, 'round_trip_of': "3 shell commands 'true', run as vanilla runs commands"}
    assert doctor.format_lines('web1', report) == [
        'web1: not served by ansible-svc (runs vanilla)',
        "  why:         connection ssh under strategy linear, which is Ansible's own: ...",
        '  chain:       ssh web1',
        '  interpreter: /usr/bin/python3, Python 3.9.2',
        "  round trip:  31.5 ms (median of 3 shell commands 'true', run as vanilla runs commands)",
    ]


def test_format_a_failure_and_an_unknown_interpreter():
    lines = doctor.format_lines('web1', {'served': True, 'reason': 'r', 'chain': ['ssh web1'],
                                         'error': 'Failed to connect to web1: refused'})
    assert lines[-1] == '  error:       Failed to connect to web1: refused'
    lines = doctor.format_lines('web1', {'served': True, 'reason': 'r', 'chain': ['ssh web1'],
                                         'error': 'EOF on stream; last 100 lines received:\nssh: refused\n'})
    assert lines[-2:] == ['  error:       EOF on stream; last 100 lines received:', '               ssh: refused']
    assert not any('interpreter' in line or 'mux' in line for line in lines)
    lines = doctor.format_lines('win', {'served': False, 'reason': 'r', 'chain': ['winrm win'],
                                        'python_error': 'not probed: the host\'s shell is not a POSIX shell'})
    assert lines[-1] == "  interpreter: unknown (not probed: the host's shell is not a POSIX shell)"


def test_format_an_empty_mux():
    lines = doctor.mux_lines({'pid': 1, 'interpreters': {'count': 0, 'listed': []}, 'files': {}, 'jobs': {}})
    assert lines == ['  mux:         pid 1, 0 interpreters cached, 0 for this host and its bastions',
                     '  mux files:   0 module files cached (0 B), 0 file grants open',
                     '  mux jobs:    0 running, 0 results held, 0 parked, 0 refused']


# -- the mux's summaries -------------------------------------------------------------

class FakeContext:
    def __init__(self, name):
        self.name = name


SECRET = 'pa55-w0rd-never-shown'


def _spec(**kwargs):
    spec = dict(SSH, password=mitogen.core.Secret(SECRET), identity_file='/keys/id', ssh_path='ssh',
                ssh_args=['-o', 'ProxyCommand=sshpass -p %s ssh gw' % SECRET], check_host_keys='enforce',
                become=None)
    spec.update(kwargs)
    return spec


def test_about_keeps_no_secret():
    become = {'method': 'sudo', 'user': 'root', 'password': mitogen.core.Secret(SECRET), 'exe': 'sudo', 'flags': '-H'}
    about = connections.about(_spec(become=become, via=[{'host': 'b', 'port': 22, 'user': 'ops'}]))
    assert about == {'transport': 'ssh', 'host': '10.0.0.5', 'port': 2222, 'user': 'deploy',
                     'via': [{'host': 'b', 'port': 22, 'user': 'ops'}], 'become': {'method': 'sudo', 'user': 'root'}}


def _cache(router):
    """A ConnectionService with the cache entries a run would have made:
    an ssh login and its become interpreter, and a local one."""
    svc = ConnectionService(router)
    login = svc.login_layer(_spec())
    become_spec = _spec(become={'method': 'sudo', 'user': 'app', 'password': mitogen.core.Secret(SECRET),
                                'exe': 'sudo', 'flags': ''})
    become = svc.become_layer(become_spec)
    local = svc.login_layer({'transport': 'local', 'host': 'localhost'})
    info = {'python': '/usr/bin/python3', 'version': [3, 11, 2], 'pid': 7}
    for layer, spec, python, asked, name in (
            (login, _spec(), 'python3', (None, 'python3', '/usr/bin/python3'), 'ssh.10.0.0.5:2222'),
            (become, become_spec, '/usr/bin/python3', ('/usr/bin/python3',), 'sudo.app'),
            (local, {'transport': 'local', 'host': 'localhost'}, '/usr/bin/python3', (None,), 'local.9')):
        key = (layer, python)
        svc._entries[key] = entry = Entry(FakeContext(name), info, connections.about(spec))
        entry.refs = 2
        for alias in asked:
            svc._aliases[(layer, alias)] = key
    return svc


def test_connection_summary_lists_the_addresses_asked_for(router):
    svc = _cache(router)
    summary = svc.summary([('ssh', '10.0.0.5', 2222)])
    assert summary['count'] == 3
    assert [(e['name'], e['become'], e['started_as'], e['requested'], e['refs'], e['version'])
            for e in summary['listed']] == [
        ('ssh.10.0.0.5:2222', None, 'python3', ['(any)', '/usr/bin/python3', 'python3'], 2, '3.11.2'),
        ('sudo.app', {'method': 'sudo', 'user': 'app'}, '/usr/bin/python3', ['/usr/bin/python3'], 2, '3.11.2'),
    ]
    assert [e['name'] for e in svc.summary()['listed']] == ['ssh.10.0.0.5:2222', 'sudo.app', 'local.9']
    assert svc.summary([('ssh', 'elsewhere', 22)]) == {'count': 3, 'listed': []}


def test_doctor_report_holds_no_secret(router):
    """Neither the password nor its digest, nor ssh arguments, reach the report."""
    svc = _cache(router)
    digest = svc._digest(mitogen.core.Secret(SECRET))
    files = GrantedFileService(router)
    files.register('/tmp/payload', mitogen.core.Context(router, 12))
    pushed = PushFileCache(router=router)
    pushed._cache['/run/payloads/abc.zip'] = mitogen.core.Blob(b'x' * 2048)
    jobs = JobResultService(router)
    jobs.issue('j1', mitogen.core.Context(router, 11))
    report = DoctorService(router, svc, jobs, files, pushed).report(addresses=[['ssh', '10.0.0.5', 2222]])
    assert report['files'] == {'grants': 1, 'cached': 1, 'cached_bytes': 2048}
    assert report['jobs'] == {'running': 1, 'held': 0, 'parked': 0, 'delivered': 0, 'refused': 0}
    assert len(report['interpreters']['listed']) == 2
    text = repr(report)
    for secret in (SECRET, digest, 'ProxyCommand', '/keys/id'):
        assert secret not in text


def test_pushed_summary_of_an_empty_cache(router):
    assert pushed_summary(PushFileCache(router=router)) == {'cached': 0, 'cached_bytes': 0}


def test_job_summary_counts(router):
    jobs = JobResultService(router)

    class Msg:
        src_id = 11

    class Sender:
        def send(self, value):
            pass

    jobs.issue('held', mitogen.core.Context(router, 11))
    jobs.push('held', {'rc': 0}, Msg())
    jobs.listen('done', Sender(), mitogen.core.Context(router, 11))
    jobs.push('done', {'rc': 0}, Msg())
    jobs.push('parked', {'rc': 0}, Msg())
    jobs.issue('running', mitogen.core.Context(router, 11))
    assert jobs.summary() == {'running': 1, 'held': 1, 'parked': 1, 'delivered': 1, 'refused': 0}
