"""The benchmark suite's quick mode runs end to end, so the suite cannot rot unnoticed."""

from __future__ import annotations

from pathlib import Path

from benchmarks.__main__ import main


def test_quick_benchmarks_write_a_page(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    assert main(["--quick", "--output", str(output)]) == 0
    page = output.read_text()
    assert page.startswith("# Benchmarks")
    assert "## Intent classification on CLINC150" in page
    assert "| **ours**: top-5 mean" in page
    assert "semantic-router method" in page
    assert "not phospho's intent model" in page  # the caveat travels with the numbers
