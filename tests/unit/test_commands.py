"""Target-side commands: pipes, a terminal as ssh -tt gives one, no shell."""
import os

from ansible_svc.target import commands


def test_pipes_keep_stdout_and_stderr_apart():
    rc, out, err = commands.run_command("echo a; echo b >&2; exit 3", shell="/bin/sh")
    assert (rc, bytes(out), bytes(err)) == (3, b"a\n", b"b\n")


def test_a_terminal_joins_stderr_and_ends_lines_with_crlf():
    rc, out, err = commands.run_command("echo a; echo b >&2; printf c; exit 4", shell="/bin/sh", tty=True)
    assert (rc, bytes(out), bytes(err)) == (4, b"a\r\nb\r\nc", b"")


def test_the_terminal_is_the_commands_own_and_controlling():
    rc, out, _ = commands.run_command('tty; [ "$SSH_TTY" = "$(tty)" ] && echo same; echo "TERM=${TERM-unset}"',
                                      shell="/bin/sh", tty=True, term="vt100")
    lines = bytes(out).decode().split("\r\n")
    assert lines[0].startswith("/dev/pts/") and lines[1] == "same" and lines[2] == "TERM=vt100", lines
    _, out, _ = commands.run_command('echo "TERM=${TERM-unset}"', shell="/bin/sh", tty=True)
    assert bytes(out) == b"TERM=unset\r\n"


def test_no_shell_runs_the_words_as_containers_podman_does():
    rc, out, _ = commands.run_command("echo a; echo 'b c'", shell=False)
    assert (rc, bytes(out)) == (0, b"a; echo b c\n")


def test_a_terminal_command_reading_stdin_sees_no_input_before_its_bound():
    # vanilla's ssh -tt sends no input either; `timeout` stands for the task's bound.
    rc, out, _ = commands.run_command("timeout 1 cat; echo rc=$?", shell="/bin/sh", tty=True)
    assert bytes(out) == b"rc=124\r\n"


def test_no_descriptor_is_left_open():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        commands.run_command("echo x", shell="/bin/sh", tty=True)
    assert len(os.listdir("/proc/self/fd")) == before
