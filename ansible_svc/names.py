"""Names of our mitogen services (in the mux, and the target.* ones in targets).

Callers address mitogen services by their dotted class name; keeping the names
here lets workers and targets call them without importing the mux code.
"""

# !mitogen: minify_safe

CONNECTIONS = "ansible_svc.mux.connections.ConnectionService"
JOBS = "ansible_svc.mux.jobs.JobResultService"
JOB_STATUS = "ansible_svc.mux.job_status.JobStatusService"
DOCTOR = "ansible_svc.mux.doctor.DoctorService"
FILES = "mitogen.service.FileService"
PUSH_FILES = "ansible_svc.target.filecache.PushFileCache"
TASK_CONTROL = "ansible_svc.target.modules.TaskControl"
TASK_RUNNER = "ansible_svc.target.runner.TaskRunner"
