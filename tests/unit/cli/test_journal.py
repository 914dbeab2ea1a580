"""The learner's notebook: load runs and lab start times, bounded."""

from workerlab.common import journal


def test_runs_are_recorded_filtered_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKERLAB_LAB_HOME", str(tmp_path))
    assert journal.load_runs() == []
    for i in range(journal.MAX_RUNS + 5):
        journal.record_run({"started_at": float(i)})
    runs = journal.load_runs()
    assert len(runs) == journal.MAX_RUNS
    assert runs[0]["started_at"] == 5.0
    assert [r["started_at"] for r in journal.load_runs(since=203.0)] == [203.0, 204.0]


def test_corrupt_lines_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKERLAB_LAB_HOME", str(tmp_path))
    (tmp_path / "load-runs.jsonl").write_text('{"started_at": 1}\nnot json\n[1]\n')
    assert journal.load_runs() == [{"started_at": 1}]


def test_lab_start_times(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKERLAB_LAB_HOME", str(tmp_path))
    assert journal.lab_started_at(4) is None
    journal.mark_lab_started(4, at=123.0)
    journal.mark_lab_started(5, at=456.0)
    assert journal.lab_started_at(4) == 123.0
    assert journal.lab_started_at(5) == 456.0
