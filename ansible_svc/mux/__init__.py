"""The mux process: mitogen router, unix listener and service pool.

Nothing here is imported by Ansible workers or by targets, except the service
names they address (see ``ansible_svc.names``).
"""
