"""The collector of ``test_examples.py`` itself: it finds the blocks and failures fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from phospho_embed.emulator import Emulator

from .collector import (
    DocsExampleError,
    ExampleFailure,
    find_claims,
    parse_markdown,
    run_markdown,
)
from .test_examples import run_file

FENCE = "```"


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples below write files in the current directory, as docs examples do."""
    monkeypatch.chdir(tmp_path)


def page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text).replace("'''", FENCE), encoding="utf-8")
    return path


def test_a_failing_example_fails_naming_its_file_and_line(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        # Title

        '''python
        x = 1
        '''

        Some text.

        '''python
        y = x + 1
        assert y == 3, "wrong sum"
        '''
        """,
    )
    with pytest.raises(ExampleFailure) as info:
        run_markdown(path)
    message = str(info.value)
    assert message.startswith("page.md:10: the python block failed")
    assert "wrong sum" in message
    assert 'page.md", line 11' in message  # the traceback shows the Markdown line


def test_blocks_share_a_namespace_in_order_and_may_await(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        '''python
        import asyncio
        values = []
        '''

        '''py title="second.py"
        await asyncio.sleep(0)
        values.append(1)
        loop = asyncio.get_running_loop()
        '''

        '''python
        async with asyncio.timeout(1) if hasattr(asyncio, "timeout") else asyncio.Lock():
            values.append(2)
        assert asyncio.get_running_loop() is loop  # one loop per file, as in a notebook
        assert values == [1, 2]
        '''
        """,
    )
    report = run_markdown(path)
    assert [block.line for block in report.ran] == [2, 7, 13]


def test_indented_fences_in_tabs_admonitions_and_lists_are_run(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        === "sync"

            '''python
            seen = ["tab"]
            '''

        !!! note
            Inside an admonition:

            '''python
            seen.append("admonition")
            '''

        1. A list item

            '''python
            seen.append("list")
            assert seen == ["tab", "admonition", "list"]
            '''
        """,
    )
    report = run_markdown(path)
    assert len(report.ran) == 3
    with pytest.raises(ExampleFailure, match=r"page\.md:4"):
        run_markdown(page(tmp_path, "=== \"a\"\n\n    '''python\n    1 / 0\n    '''\n"))


def test_markers_skip_setup_and_run(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        <!-- docs-test: setup
        texts = ["hello", "refund please"]
        -->

        '''python
        assert len(texts) == 2
        with open("texts.txt", "w") as out:
            out.write("\\n".join(texts) + "\\n")
        '''

        <!-- docs-test: skip (needs an OpenAI key) -->
        '''python
        raise RuntimeError("never runs")
        '''

        '''bash
        exit 1  # unmarked shell blocks are not run
        '''

        <!-- docs-test: run -->
        '''bash
        test "$(wc -l < texts.txt)" -eq 2
        python -c "import phospho_embed"
        '''
        """,
    )
    report = run_markdown(path)
    assert [block.kind for block in report.ran] == ["setup", "python", "bash"]
    assert [block.skip for block in report.skipped] == ["needs an OpenAI key"]

    failing = page(tmp_path, "<!-- docs-test: run -->\n'''bash\nfalse\ntrue\n'''\n")
    with pytest.raises(ExampleFailure, match=r"page\.md:3: the bash block exited 1"):
        run_markdown(failing)


def test_fences_inside_other_fences_are_not_examples(tmp_path: Path) -> None:
    text = "````markdown\n```python\nraise SystemExit\n```\n````\n"
    assert parse_markdown(text) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<!-- docs-test: skipp -->\n", "unknown marker"),
        ("<!-- docs-test: skip (x) -->\nprose\n'''python\n'''\n", "right before a fence"),
        ("<!-- docs-test: run -->\n'''python\n'''\n", "does not apply to a python block"),
        ("<!-- docs-test: setup\nx = 1\n", "never closed"),
        ("<!-- docs-test: skip (x) -->\n", "before no fence"),
    ],
)
def test_malformed_markers_are_errors(text: str, error: str) -> None:
    with pytest.raises(DocsExampleError, match=error):
        parse_markdown(text.replace("'''", FENCE))


def test_example_tests_get_the_emulator_and_leaks_fail(
    phospho_emulator: Emulator, tmp_path: Path
) -> None:
    path = page(
        tmp_path,
        """\
        '''python
        from phospho_embed import PhosphoClient


        def test_my_app(phospho_emulator):
            phospho_emulator.configure(fault="503", fault_every=2)
            with PhosphoClient(api_key="k", base_url=phospho_emulator.base_url) as client:
                client.embed_many(["a", "b"])
            assert phospho_emulator.stats.by_status[503] >= 1
            global called
            called = True


        async def test_async(tmp_path):
            assert tmp_path.is_dir()
        '''
        """,
    )
    report = run_markdown(
        path,
        fixtures={"phospho_emulator": lambda: phospho_emulator, "tmp_path": lambda: tmp_path},
        after_test=phospho_emulator.reset,
    )
    assert report.tests_called == ["test_my_app", "test_async"]
    assert phospho_emulator.settings.fault is None  # reset after each example test

    leaky = page(tmp_path, "'''python\nimport socket\nsock = socket.socket()\n'''\n")
    with pytest.raises(ExampleFailure, match="leak resources"):
        run_markdown(leaky)


def test_pages_without_examples_pass_and_all_skipped_ones_say_so(
    phospho_emulator: Emulator, tmp_path: Path
) -> None:
    prose = page(tmp_path, "# Only prose\n\n'''text\nnot code\n'''\n")
    run_file(prose, phospho_emulator, tmp_path)
    skipped = page(tmp_path, "<!-- docs-test: skip (needs an LLM) -->\n'''python\n1 / 0\n'''\n")
    with pytest.raises(pytest.skip.Exception, match=r"line 3: needs an LLM"):
        run_file(skipped, phospho_emulator, tmp_path)
    malformed = page(tmp_path, "<!-- docs-test: skipp -->\n")
    with pytest.raises(pytest.fail.Exception, match=r"page\.md: line 1: unknown marker"):
        run_file(malformed, phospho_emulator, tmp_path)


def test_a_script_exiting_zero_passes_and_nonzero_fails(tmp_path: Path) -> None:
    ok = page(tmp_path, "'''python\nimport sys\n\nsys.exit(0)\n'''\n'''python\nx = 1\n'''\n")
    assert len(run_markdown(ok).ran) == 2
    with pytest.raises(ExampleFailure, match=r"page\.md:2: the python block exited 3"):
        run_markdown(page(tmp_path, "'''python\nraise SystemExit(3)\n'''\n"))


# -- output claims: `print(...)  # what it prints` ---------------------------------------------


def test_a_true_output_claim_passes_and_the_output_is_still_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = page(
        tmp_path,
        """\
        '''python
        import asyncio

        print(1 + 1)  # 2
        print("a", "b", sep="-")  #   a-b
        if True:
            with open("out.txt", "w") as out:
                print("nested")  # nested


        def shout(text):
            print(text.upper())  # HELLO


        async def main():
            async with asyncio.Lock():
                print("async")  # async


        shout("hello")
        await main()
        '''
        """,
    )
    report = run_markdown(path)
    assert [claim.line for claim in report.claims_checked] == [4, 5, 8, 12, 17]
    assert capsys.readouterr().out == "2\na-b\nnested\nHELLO\nasync\n"


def test_a_false_claim_fails_naming_the_file_the_line_the_claim_and_the_output(
    tmp_path: Path,
) -> None:
    path = page(
        tmp_path,
        """\
        # Title

        '''python
        usage = {"requests": 3}
        print(usage["requests"])  # 3
        '''

        '''python
        usage["requests"] += 1
        print(usage["requests"])  # 3: the repeated text was sent once
        '''
        """,
    )
    with pytest.raises(ExampleFailure) as info:
        run_markdown(path)
    message = str(info.value)
    assert message.startswith("page.md:10: this print writes something other than what its")
    assert "claimed: 3: the repeated text was sent once" in message
    assert "printed: 4" in message


def test_ellipsis_in_a_claim_stands_for_any_text_even_several_lines(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        '''python
        print(object())  # <object object at ...>
        print("first\\nsecond\\nthird")  # first...third
        print("Usage(requests=3, tokens=17)")  # Usage(requests=3, tokens=...)
        print("exact")  # ...exact...
        '''
        """,
    )
    assert len(run_markdown(path).claims_checked) == 4
    wrong = page(
        tmp_path,
        "'''python\nprint('Usage(requests=4, tokens=17)')  # Usage(requests=3, ...)\n'''\n",
    )
    with pytest.raises(ExampleFailure, match=r"page\.md:2: .*\n  claimed: Usage\(requests=3"):
        run_markdown(wrong)


def test_a_print_run_several_times_is_checked_on_its_first_output(tmp_path: Path) -> None:
    first = page(tmp_path, "'''python\nfor i in range(3):\n    print(i)  # 0\n'''\n")
    assert len(run_markdown(first).claims_checked) == 1
    later = page(tmp_path, "'''python\nfor i in range(3):\n    print(i)  # 2\n'''\n")
    with pytest.raises(ExampleFailure, match=r"page\.md:3: .*\n  claimed: 2\n  printed: 0"):
        run_markdown(later)


def test_a_hash_inside_a_string_is_not_a_comment(tmp_path: Path) -> None:
    source = 'print("# not a claim")\nprint("a # b", "#")\nprint(f"{1}#{2}")  # 1#2\n'
    assert [(claim.line, claim.text) for claim in find_claims(source)] == [(3, "1#2")]
    path = page(tmp_path, f"'''python\n{source}'''\n")
    assert [claim.line for claim in run_markdown(path).claims_checked] == [4]


def test_prints_without_a_trailing_comment_are_not_checked(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """\
        print("not checked")
        # a comment on its own line is prose, not a claim
        print("not checked either")
        print("a"); x = 1  # the comment follows `x = 1`, not the print
        y = print  # not a call
        print(
            "multi-line",
        )  # multi-line
        """
    )
    assert [(claim.line, claim.end_line) for claim in find_claims(source)] == [(6, 8)]
    path = page(tmp_path, f"'''python\n{source}'''\n")
    assert [claim.line for claim in run_markdown(path).claims_checked] == [7]


def test_a_claim_whose_print_never_runs_fails(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        '''python
        def report(value):
            print(value)  # 42
        '''

        Later, a function defined earlier prints: its claim is checked then.

        '''python
        report(42)
        if False:
            print("never")  # never
        '''
        """,
    )
    with pytest.raises(ExampleFailure, match=r"page\.md:11: this print never ran"):
        run_markdown(path)
    path.write_text(path.read_text().replace("if False:", "if True:"))
    assert [claim.line for claim in run_markdown(path).claims_checked] == [3, 11]
