"""The consumer's duplicate recognition (SeenIds): its window, its log, and the log's upkeep."""

from __future__ import annotations

import json

from consumer.consumer import SeenIds


def test_ids_in_the_log_are_recognised_after_a_restart_and_the_window_is_bounded(tmp_path):
    log = tmp_path / "processed.jsonl"
    first = SeenIds(str(log), limit=3)
    for n in range(5):
        first.record({"id": f"m{n}"})
    restarted = SeenIds(str(log), limit=3)
    assert [f"m{n}" in restarted for n in range(5)] == [False, False, True, True, True]


def test_a_line_cut_short_by_a_kill_is_skipped_not_fatal(tmp_path):
    log = tmp_path / "processed.jsonl"
    log.write_text(json.dumps({"id": "whole"}) + "\n" + '{"id": "cut')
    seen = SeenIds(str(log))
    assert "whole" in seen
    seen.record({"id": "next"})
    assert "next" in SeenIds(str(log))


def test_the_log_is_compacted_to_the_window_and_keeps_recognising(tmp_path):
    log = tmp_path / "processed.jsonl"
    seen = SeenIds(str(log), limit=10)
    for n in range(100):
        seen.record({"id": f"m{n}"})
    lines = log.read_text().splitlines()
    assert len(lines) <= 2 * 10 + 1
    assert all(f"m{n}" in SeenIds(str(log), limit=10) for n in range(90, 100))
    assert not (tmp_path / "processed.compacting").exists()
