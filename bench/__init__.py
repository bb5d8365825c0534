"""Benchmark suite for ansible-svc: `python -m bench` (see bench/README.md).

Modules, one concern each:

* ``config``: paths, the ssh test environment, software and machine facts.
* ``modes``: how each mode (vanilla, reference, svc, floor) runs ansible-playbook.
* ``workloads``: the generated playbooks and their input files.
* ``topology``: the hosts to run against (loopback, network namespaces, proxies).
* ``proxy``: the user-space TCP proxy that adds latency (its own process).
* ``runner``: one measured ansible-playbook run.
* ``report``: latest.md, latest.json, latest.png.
* ``cli``: options and the round-robin schedule.
"""
