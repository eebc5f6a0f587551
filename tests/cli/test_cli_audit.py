"""``stratowatch audit verify`` / ``show`` on a real store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from stratowatch.cli import cli
from stratowatch.store import open_store


def test_verify_says_intact_then_names_the_changed_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    with open_store(url) as store:
        for i in range(5):
            store.audit("admin", "principal_add", {"id": f"user{i}"}, time_s=100.0 + i)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--store", url])
    assert ok.exit_code == 0, ok.output
    assert "5 records" in ok.output and "intact" in ok.output
    shown = runner.invoke(cli, ["audit", "show", "--store", url, "--limit", "2"])
    assert shown.exit_code == 0 and shown.output.count("principal_add") == 2 and "user4" in shown.output
    import sqlite3

    db = sqlite3.connect(tmp_path / "node.db")
    db.execute("DROP TRIGGER audit_log_append_only")
    db.execute("UPDATE audit_log SET actor = 'nobody' WHERE id = 3")
    db.commit()
    db.close()
    bad = runner.invoke(cli, ["audit", "verify", "--store", url])
    assert bad.exit_code == 1
    assert "BROKEN at record 3" in bad.output


def test_a_store_that_cannot_be_opened_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", "--store", "postgresql://nobody@127.0.0.1:1/none"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "127.0.0.1" in result.output
