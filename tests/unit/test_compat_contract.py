"""Contract tests: each adapter of ansible_svc.controller.compat against the
*installed* ansible-core, from its own signatures and its own output.

Run under every core of the matrix (`make test`), these fail when a core
release changes one of the places we touch, before a user's play does.
The async_wrapper command line and the housekeeping commands are taken from
a real vanilla run (`-c local -vvv`, pipelining off, which logs every
command line the action plugins build).
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.executor.task_executor import TaskExecutor
from ansible.plugins.action import ActionBase

from ansible_svc.controller import ansiballz, async_jobs, async_poll, compat
from ansible_svc.target import housekeeping

VENV_BIN = Path(sys.executable).parent
CORE = compat.adapter()


def test_the_installed_core_has_its_own_adapter():
    """Every core of the matrix has a named adapter (no newest-fallback)."""
    assert compat.series(compat.core_version()) == CORE.series
    assert CORE.series <= compat.NEWEST_TESTED


@pytest.mark.parametrize('feature', sorted(compat.CHECKS))
def test_every_runtime_check_passes_on_the_installed_core(feature):
    compat.reset()
    assert compat._verdict(feature, compat.core_version()) is None


# -- 1. the poll hook -----------------------------------------------------------


def _installed_poll():
    method = TaskExecutor._poll_async_result
    return getattr(method, 'ansible_svc_original', method)


def test_poll_hook_signature_and_call_site():
    """The parameters we bind, and the keyword the executor passes the task
    result with, read from the installed task_executor.py."""
    assert tuple(inspect.signature(_installed_poll()).parameters) == CORE.poll_parameters
    source = inspect.getsource(TaskExecutor)
    calls = re.findall(r'self\._poll_async_result\((\w+)=', source)
    assert calls and set(calls) == {CORE.poll_result_parameter}, calls


def test_poll_hook_reads_the_job_id_and_returns_the_cores_result_type():
    annotation = inspect.signature(_installed_poll()).return_annotation
    if CORE.series >= (2, 21):
        from ansible._internal._task import UnifiedTaskResult

        assert annotation in ('UnifiedTaskResult', UnifiedTaskResult)
        result = UnifiedTaskResult.from_action_result_dict({'ansible_job_id': 'j1.2', 'started': True, 'finished': False})
    else:
        assert annotation is inspect.Signature.empty  # vanilla returns the result dict
        result = {'ansible_job_id': 'j1.2', 'started': True, 'finished': False}
    assert CORE.poll_job_id(result) == 'j1.2'


def test_poll_hook_hands_other_connections_to_vanilla_unchanged():
    """Whatever the installed core passes (positional or by keyword) reaches
    the original untouched, and its return value comes back as is."""
    calls = []
    marker = object()
    original = _installed_poll()

    def fake_original(self, *args, **kwargs):
        calls.append((self, args, kwargs))
        return marker

    fake_original.__signature__ = inspect.signature(original)
    hook = async_poll.wrap(fake_original)

    class Executor:
        _connection = object()  # e.g. a winrm or docker connection

    executor = Executor()
    name = CORE.poll_result_parameter
    assert hook(executor, **{name: 'R', 'templar': 'T', 'task_vars': {'v': 1}}) is marker
    assert hook(executor, 'R', 'T', {'v': 1}) is marker
    assert calls == [(executor, (), {name: 'R', 'templar': 'T', 'task_vars': {'v': 1}}),
                     (executor, ('R', 'T', {'v': 1}), {})]


def test_private_executor_attributes_exist():
    """The TaskExecutor attributes the poll hook reads, from a real instance
    built with the installed constructor's own parameters."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.task import Task
    from ansible.template import Templar

    fakes = {'job_vars': {}, 'loader': DataLoader(), 'task': Task()}
    params = list(inspect.signature(TaskExecutor.__init__).parameters)[1:]
    executor = TaskExecutor(**{name: fakes.get(name, object()) for name in params})
    for attribute in CORE.executor_attributes:
        static = inspect.getattr_static(TaskExecutor, attribute, None)
        assert attribute in vars(executor) or isinstance(static, property), attribute
    assert callable(Templar._from_template_engine)


# -- 2. result parsing -----------------------------------------------------------


def _action():
    from ansible.playbook.task import Task
    from ansible.plugins.loader import action_loader

    return action_loader.get('ansible.legacy.async_status', task=Task(), connection=None, play_context=None,
                             loader=None, templar=None, shared_loader_obj=None)


def test_result_parsing_signature():
    assert tuple(inspect.signature(ActionBase._parse_returned_data).parameters) == CORE.parse_parameters
    assert CORE.results_contract() is None


def test_result_parsing_through_the_installed_core():
    """A job file's data parsed by the core's own _parse_returned_data: a
    dict, internal keys gone, as async_status hands it to merge_hash."""
    data = {'started': True, 'finished': True, 'ansible_job_id': 'j1.2', 'rc': 0, 'stdout': 'a\nb', 'changed': True,
            'ansible_facts': {'discovered_interpreter_python': '/usr/bin/python3', 'kept': 1}}
    parsed = CORE.parse_module_output(_action(), data)
    assert type(parsed) is dict
    assert parsed['ansible_job_id'] == 'j1.2' and parsed['rc'] == 0 and parsed['stdout'] == 'a\nb'
    assert parsed['changed'] is True and parsed['finished'] in (True, 1)
    assert parsed['ansible_facts'] == {'kept': 1}
    unparsable = CORE.parse_module_output(_action(), 'not a dict')
    assert unparsable.get('failed') is True


# -- 3. the AnsiballZ layout is in test_ansiballz.py (a real wrapper) -----------

# -- 4 and 5. the async_wrapper command line and the housekeeping commands ------


@pytest.fixture(scope='module')
def vanilla_commands(tmp_path_factory) -> list[str]:
    """Every command line a vanilla local run hands its connection: the
    housekeeping around a copy, and an async task (poll: 0)."""
    tmp = tmp_path_factory.mktemp('contract')
    cfg = tmp / 'empty.cfg'
    cfg.write_text('')
    (tmp / 'src.txt').write_text('x')
    pb = tmp / 'pb.yml'
    pb.write_text(f'''- hosts: all
  gather_facts: false
  tasks:
    - copy:
        src: {tmp}/src.txt
        dest: {tmp}/dest.txt
    - command: /bin/true
      async: 17
      poll: 0
''')
    env = dict(os.environ, ANSIBLE_PIPELINING='0', ANSIBLE_STRATEGY='linear', ANSIBLE_REMOTE_TMP=str(tmp / 'remote'),
               ANSIBLE_LOCAL_TEMP=str(tmp / 'local'), ANSIBLE_ASYNC_DIR=str(tmp / 'async'), ANSIBLE_CONFIG=str(cfg),
               ANSIBLE_NOCOLOR='1')
    p = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-vvv', '-i', 'localhost,', '-c', 'local',
                        '-e', f'ansible_python_interpreter={sys.executable}', str(pb)],
                       env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    commands = re.findall(r'^<localhost> EXEC (.*)$', p.stdout, re.M)
    assert commands, p.stdout
    return [c.replace(str(tmp), '@TMP@') for c in commands]


def test_async_wrapper_command_line_of_the_installed_core(vanilla_commands):
    found = [c for c in vanilla_commands if 'async_wrapper.py j' in c]
    assert len(found) == 1, vanilla_commands
    command = async_jobs.parse_command(found[0])
    assert command is not None, found[0]
    assert command.limit == 17 and re.fullmatch(r'j\d+', command.base_jid)
    assert os.path.basename(command.module_path) == 'AnsiballZ_command.py'
    assert not command.preserve_tmp and command.tmpdir == os.path.dirname(command.module_path)
    assert command.args_path is None  # new-style modules carry their arguments


def test_housekeeping_commands_of_the_installed_core(vanilla_commands, tmp_path):
    """Every command of the vanilla run that is neither the module nor the
    async_wrapper is done by the target without a shell. Replayed in order
    (under a fresh directory, the files they chmod recreated first: the run
    removed them)."""
    kinds = set()
    for cmd in vanilla_commands:
        cmd = cmd.replace('@TMP@', str(tmp_path))
        inner = shlex.split(cmd)[2]
        if CORE.shell_suffix:
            assert inner.endswith(CORE.shell_suffix), cmd
            inner = inner[:-len(CORE.shell_suffix)]
        else:
            assert not inner.endswith('sleep 0'), cmd
        if inner.startswith(sys.executable) or 'async_wrapper.py j' in inner:
            continue  # the module, or the async job: not housekeeping
        kind = 'mkdtemp' if 'mkdir' in inner else inner.split()[0]
        kinds.add(kind)
        if kind == 'chmod':
            for path in shlex.split(inner)[2:]:
                if not path.endswith('/'):
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    Path(path).touch()
        assert housekeeping.run(cmd) is not None, cmd
    assert {'mkdtemp', 'chmod', 'rm'} <= kinds, vanilla_commands  # (expand_user: test_housekeeping.py)


# -- 3. the AnsiballZ loader signature (the wrapper itself: test_ansiballz.py) --


def test_ansiballz_loader_and_main_signatures():
    from ansible._internal._ansiballz import _wrapper
    from ansible.module_utils._internal._ansiballz import _loader

    assert set(inspect.signature(_wrapper._ansiballz_main).parameters) == compat.ANSIBALLZ_KNOWN
    assert set(ansiballz.REQUIRED_KEYS) == compat.ANSIBALLZ_NEEDED
    params = inspect.signature(_loader.run_module).parameters
    assert compat.LOADER_KEYWORDS <= set(params)
    assert {n for n, p in params.items() if p.default is inspect.Parameter.empty} <= compat.LOADER_KEYWORDS
    # what the target really passes (target/wrapper.py), read from its source
    source = (Path(housekeeping.__file__).parent / 'wrapper.py').read_text()
    call = re.search(r'_loader\.run_module\((.*?)\n\s*\)', source, re.S).group(1)
    assert set(re.findall(r'(\w+)=', call)) == compat.LOADER_KEYWORDS


def test_poll_gives_up_in_the_installed_cores_words():
    """The words our poll hook uses for a job outliving its limit are the
    ones the installed core's own poll loop uses."""
    source = inspect.getsource(TaskExecutor._poll_async_result)
    words = compat.adapter().poll_gave_up(7).split('7')[0]  # the text before the limit
    assert '"%s' % words in source, words


def test_discovery_values_are_the_installed_cores():
    """The interpreter values that ask for discovery, as the installed core's
    module_common decides it."""
    from ansible.executor import module_common

    listed = re.search(r"interpreter_out in \[([^\]]*)\]", inspect.getsource(module_common._get_shebang))
    assert listed, 'module_common._get_shebang no longer lists the discovery values'
    assert set(ast.literal_eval('[%s]' % listed.group(1))) == set(compat.adapter().discovery_values)


# -- 7. the workers' result queue -----------------------------------------------


def test_a_signal_during_a_result_queue_write_waits_for_the_write():
    """A worker's SIGINT/SIGTERM handler ends it with os._exit: run inside a
    write to the shared queue, it would leave the queue's lock taken and hang
    the controller. The guard holds the signal until the write is done."""
    import signal

    from ansible.executor.task_queue_manager import FinalQueue

    events = []
    inherited = FinalQueue.put

    def signalled_mid_write(self, obj):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while "writing"
        events.append('wrote')
        return inherited(self, obj)

    previous = signal.signal(signal.SIGTERM, lambda *_: events.append('handler ran'))
    FinalQueue.put = signalled_mid_write
    queue = FinalQueue()
    try:
        compat.guard_result_queue()
        assert FinalQueue.put is not signalled_mid_write, 'the guard was not installed'
        queue.put('result')
        assert events == ['wrote', 'handler ran']
        assert queue.get() == 'result'
        assert queue._wlock.acquire(timeout=1), 'the queue lock was left taken'
        queue._wlock.release()
    finally:
        FinalQueue.put = inherited
        signal.signal(signal.SIGTERM, previous)
        queue.close()


def test_connection_lookup_the_strategies_redirect():
    """strategy.redirect_connections wraps connection_loader.get_with_context,
    called as TaskExecutor calls it; it needs the result's ``object``, None
    for a name no plugin has (then it names our plugin in the error)."""
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader, init_plugin_loader

    init_plugin_loader()
    source = inspect.getsource(TaskExecutor)
    assert 'connection_loader.get_with_context(' in source
    kwargs = dict(new_stdin=None, task_uuid='x', ansible_playbook_pid='1')
    found = connection_loader.get_with_context('ssh', PlayContext(), **kwargs)
    assert found.object is not None and type(found.object).__name__ == 'Connection'
    assert connection_loader.get_with_context('svc_no_such_connection', PlayContext(), **kwargs).object is None


def test_action_plugin_api_the_doctor_uses():
    """The doctor's action (controller/doctor.py) runs shell commands on hosts
    it does not serve through ActionBase._low_level_execute_command(cmd,
    sudoable=...), which returns rc/stdout/stderr, and reads _play_context."""
    params = inspect.signature(ActionBase._low_level_execute_command).parameters
    assert list(params)[:2] == ['self', 'cmd'] and 'sudoable' in params
    source = inspect.getsource(ActionBase._low_level_execute_command)
    for key in ('rc', 'stdout', 'stderr'):
        assert "%s=" % key in source or "'%s'" % key in source, key
    assert 'self._play_context = play_context' in inspect.getsource(ActionBase.__init__)
