"""What the ``svc_*`` strategies do before Ansible's own strategy runs.

Runs in the ``ansible-playbook`` controller process. Global state: the run's
mux (``mux_process``) and whether the -v line named it, one wrapper
installed on Ansible's connection plugin loader so that ``ssh`` and
``local`` hosts are served by our plugins, one on the task executor's async
poll (``async_poll``), and ``compat``'s verdicts on the running
ansible-core.
Every other connection type (paramiko, winrm, docker, network_cli, ...) is
loaded untouched and runs vanilla, in the same play.
"""

from __future__ import annotations

import os

from ansible_svc.controller import async_poll, compat, mux_process

#: Set to a true value (1, yes, true, on) to run everything vanilla for one
#: run, whatever ansible.cfg and the inventory say.
DISABLE_ENV = "ANSIBLE_SVC_DISABLE"

#: Connection names we serve, and the plugin that serves each.
REDIRECTS = {
    "ssh": "svc_ssh",
    "ansible.builtin.ssh": "svc_ssh",
    "ansible.legacy.ssh": "svc_ssh",
    "smart": "svc_ssh",
    "local": "svc_local",
    "ansible.builtin.local": "svc_local",
    "ansible.legacy.local": "svc_local",
    # Container connections, by their collections' names (ansible-core
    # routes the short names docker and chroot to these).
    "containers.podman.podman": "svc_podman",
    "community.docker.docker": "svc_docker",
    "docker": "svc_docker",
    "community.general.chroot": "svc_chroot",
    "chroot": "svc_chroot",
    # The reference's names, so that switching from it is the strategy line.
    "mitogen_ssh": "svc_ssh",
    "mitogen_local": "svc_local",
}

#: The mux and strategy the -v line named last (``install``).
_announced: tuple | None = None

#: Service pool threads beyond one per fork: connects block a thread for
#: their duration, and results and file pushes need threads meanwhile.
POOL_HEADROOM = 8


def plugin_prefix(strategy_name: str) -> str:
    """``ns.coll.`` when the strategy was loaded by FQCN, else ``''``."""
    if "." in strategy_name:
        return strategy_name.rsplit(".", 1)[0] + "."
    return ""


def redirect_connections(loader, prefix: str) -> None:
    """Make `loader` hand out our plugins for the names in REDIRECTS."""
    if getattr(loader, "_ansible_svc_prefix", None) is not None:
        loader._ansible_svc_prefix = prefix
        return
    loader._ansible_svc_prefix = prefix
    original = loader._ansible_svc_original = loader.get_with_context

    def get_with_context(name, *args, **kwargs):
        target = REDIRECTS.get(name)
        if target is None:
            return original(name, *args, **kwargs)
        ours = loader._ansible_svc_prefix + target
        found = original(ours, *args, **kwargs)
        if found.object is None:
            # Ansible would blame the host's connection ('ssh' was not found).
            from ansible.errors import AnsibleError
            raise AnsibleError(
                "ansible-svc serves %r hosts with its connection plugin %r, which Ansible cannot find: put "
                "the directory holding %s.py on connection_plugins (ANSIBLE_CONNECTION_PLUGINS) beside the "
                "strategy's, or install the collection and name the strategy ansible_svc.accel.svc_linear"
                % (name, ours, target))
        return found

    loader.get_with_context = get_with_context


def load_vanilla_connection(name: str, play_context):
    """Ansible's own connection plugin `name`, bypassing our redirects."""
    from ansible.plugins.loader import connection_loader

    get = getattr(connection_loader, "_ansible_svc_original", connection_loader.get_with_context)
    return get(name, play_context, None).object


def disabled() -> bool:
    """Whether ansible-svc is switched off for this run (``DISABLE_ENV``)."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "yes", "true", "on")


def accelerated(base):
    """Ansible's strategy class `base`, with ``install`` run before each play.

    The ``svc_*`` strategy plugins are this and their documentation.
    """

    class StrategyModule(base):
        def run(self, iterator, play_context):
            if not disabled():
                from ansible.utils.display import Display
                install(self.ansible_name, self._tqm._forks, Display().verbosity)
            return super().run(iterator, play_context)

    StrategyModule.__name__ = StrategyModule.__qualname__ = "StrategyModule"
    return StrategyModule


def install(strategy_name: str, forks: int, verbosity: int) -> None:
    """Check the core (once per run, before workers fork, so the verdicts
    and warnings are not repeated per worker), start the mux (once per run)
    and route ssh/local hosts through it."""
    from ansible.plugins.loader import connection_loader

    compat.check_all()
    compat.guard_result_queue()

    global _announced
    mux = mux_process.ensure_started(pool_size=forks + POOL_HEADROOM, verbosity=verbosity)
    if _announced != (mux, strategy_name):
        # At -v, once per run (again only if a later play names another
        # svc_* strategy, or the mux had to be restarted).
        from ansible.utils.display import Display
        Display().v("ansible-svc: strategy %s serves ssh, local and container hosts through the run's mux (pid %d)"
                    % (strategy_name, mux.proc.pid))
        _announced = (mux, strategy_name)
    redirect_connections(connection_loader, plugin_prefix(strategy_name))
    async_poll.install()
