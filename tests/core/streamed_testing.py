"""Checks shared by the streamed runs' tests (streamed_prospectivity, streamed_dense, streamed_anomaly): one copy,
so that every stream is held to the same cancel contract."""

import pytest

from janja_plugin.core.inference import windows as wn


def assert_cancels_leave_no_file(tmp_path, run, first_stop, min_calls=1):
    """run(folder, progress) writes a streamed run's files into folder. Run once to the end: progress never goes
    back, ends at 1.0 and is called more than min_calls times. Then cancelled at the first_stop-th call (in the
    map), half-way, two calls before the end and at the last call (the passes, the stride check, the end): each
    raises windows.Cancelled and leaves no output and no temporary file."""
    seen = []
    (tmp_path / "ok").mkdir()
    run(tmp_path / "ok", lambda f: seen.append(f) and False)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > min_calls
    for stop_at in (first_stop, len(seen) // 2, len(seen) - 2, len(seen)):
        calls = []
        out = tmp_path / f"cancel_{stop_at}"
        with pytest.raises(wn.Cancelled):
            run(out, lambda f, calls=calls, stop_at=stop_at: calls.append(f) or len(calls) >= stop_at)
        assert not out.exists() or not list(out.iterdir()), stop_at
