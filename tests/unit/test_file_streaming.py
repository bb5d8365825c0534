"""Large files streamed from the mux's FileService to a target, as a
``put_file`` of more than INLINE_FILE_LIMIT bytes does: real mitogen
contexts (this process plays the mux, a local child the target)."""
from __future__ import annotations

import hashlib
import os
import random

import mitogen.core
import mitogen.service
import pytest

from ansible_svc.mux.files import GrantedFileService
from ansible_svc.target import commands

MIB = 1024 * 1024


@pytest.fixture(scope='module')
def files(router):
    service = GrantedFileService(router)
    pool = mitogen.service.Pool(router, services=[service], size=2)
    try:
        yield service
    finally:
        pool.stop(join=True)


def _random_file(path, size):
    path.write_bytes(random.Random(size).randbytes(size))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_window_leaves_room_for_acknowledgement_batches():
    # The stream stalls if the mux stops sending before the target has a
    # whole batch to acknowledge.
    assert GrantedFileService.window_size_bytes >= 2 * commands.ACK_BATCH + GrantedFileService.IO_SIZE


@pytest.mark.parametrize('size', [8 * MIB, 9 * MIB + 17, commands.INLINE_FILE_LIMIT + 1])
def test_a_granted_file_arrives_whole_and_the_window_is_returned(files, target, router, tmp_path, size):
    source = tmp_path / 'source.bin'
    digest = _random_file(source, size)
    dest = tmp_path / 'dest.bin'
    files.register(path=str(source), context=target)
    target.call(commands.pull_file, str(dest), mitogen.context_id, str(source), 0o640)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    assert oct(os.stat(dest).st_mode & 0o777) == '0o640'
    # Every byte sent was acknowledged: the next file on this stream gets
    # the whole window.
    state = files._state_by_stream[router.stream_by_id(target.context_id)]
    assert state.unacked == 0 and not state.jobs


def test_a_file_not_granted_is_refused_and_nothing_is_left(files, target, tmp_path):
    source = tmp_path / 'secret.bin'
    _random_file(source, 2 * MIB)
    with pytest.raises(mitogen.core.CallError, match='not registered'):
        target.call(commands.pull_file, str(tmp_path / 'dest.bin'), mitogen.context_id, str(source))
    assert sorted(os.listdir(tmp_path)) == ['secret.bin']
