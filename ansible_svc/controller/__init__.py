"""Controller side: code that runs in ``ansible-playbook`` and its workers."""
