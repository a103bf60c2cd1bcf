"""The job summary, rendered to HTML with a CommonMark parser (tables on) and checked for structure."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Mapping
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from restart import summary
from restart.artifacts import NodeResult
from restart.outcome import Outcome
from restart.overrides import merge
from restart.plan import Plan, StepPlan
from restart.records import ERROR, SUCCESS, Job, Run, Step, context_from_json
from restart.verify import ContextCheck
from tests import demo
from tests.factories import run_record

FAILED = "model.shop.stg_orders"
SKIPPED = ("model.shop.orders", "model.shop.customers", "test.shop.not_null_orders_id.1a2b")


def make_run(run_id: int, status: int, href: str = "", steps: tuple[Step, ...] = ()) -> Run:
    return run_record(
        id=run_id,
        status=status,
        href=href or f"https://cloud.getdbt.com/deploy/1/projects/2/runs/{run_id}/",
        duration="2m 3s",
        finished_at="2026-11-24 03:12:00",
        cause="Scheduled",
        steps=steps,
        job=Job(7, "nightly", ("dbt seed", "dbt build", "dbt docs generate"), False),
    )


PREVIOUS = make_run(1001, ERROR, steps=(Step(4, "Invoke dbt with `dbt seed`", SUCCESS), Step(5, "x", ERROR)))
NEW = make_run(1002, SUCCESS, steps=(Step(4, "Invoke dbt with `dbt build --select stg_orders+`", SUCCESS),))


def narrowed(
    failures: dict[str, str], skipped: tuple[str, ...], graph: Mapping[str, tuple[str, ...]] | None
) -> StepPlan:
    results = tuple(NodeResult(uid, "error", message) for uid, message in failures.items())
    nodes = (*failures, *skipped)
    base = {
        "command": "dbt build",
        "step_index": 5,
        "action": "narrow",
        "reason": "failed",
        "new_command": "dbt build --select stg_orders orders customers",
        "nodes": nodes,
        "failures": results,
    }
    return StepPlan(**base, graph=graph or {})  # type: ignore[arg-type]


def make_plan(step: StepPlan) -> Plan:
    return Plan(
        (
            StepPlan("dbt seed", 4, "skip", "succeeded"),
            step,
            StepPlan("dbt docs generate", None, "rerun", "never ran: an earlier step failed"),
        )
    )


GRAPH = {
    "model.shop.orders": (FAILED,),
    "model.shop.customers": ("model.shop.orders",),
    "test.shop.not_null_orders_id.1a2b": ("model.shop.orders",),
}
STEP = narrowed({FAILED: "Database Error: permission denied for stg_orders"}, SKIPPED, GRAPH)
OUTCOME = Outcome(
    status="success",
    headline="run #1002 success",
    strategy="select",
    exit_code=0,
    previous=PREVIOUS,
    plan=make_plan(STEP),
    new_run=NEW,
)


class Html(HTMLParser):
    """The elements of a rendered page, with their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.balanced = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("br", "hr", "img"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.balanced = False
        else:
            self.open.pop()

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


def render(markdown: str) -> tuple[str, Html]:
    """HTML as a CommonMark renderer with GitHub's tables makes it (raw HTML passed through)."""
    page = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    parsed = Html()
    parsed.feed(page)
    parsed.close()
    return page, parsed


def fences(markdown: str, info: str) -> list[str]:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    return [t.content for t in tokens if t.type == "fence" and t.info == info]


def test_header_names_the_outcome_and_links_both_runs() -> None:
    page, parsed = render(summary.summary(OUTCOME))
    assert re.search(r"<h2>✅ dbt Cloud restart: run #1002 success</h2>", page)
    links = [a.get("href") for t, a in parsed.tags if t == "a"]
    assert PREVIOUS.href in links and NEW.href in links
    assert "❌ error" in page and "✅ success" in page and "<code>nightly</code>" in page


def test_failure_region_is_a_mermaid_graph_with_the_manifest_edges() -> None:
    [graph] = fences(summary.summary(OUTCOME), "mermaid")
    lines = graph.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = dict(re.findall(r'^\s+(n\d+)\["([^"]*)"\]', graph, re.M))
    ids = {label: node for node, label in nodes.items()}
    assert set(ids) == {FAILED, *SKIPPED}
    assert f'  {ids[FAILED]}["{FAILED}"]:::failed' in lines
    assert all(f'  {ids[s]}["{s}"]:::skipped' in lines for s in SKIPPED)
    edges = set(re.findall(r"^\s+(n\d+) --> (n\d+)$", graph, re.M))
    assert edges == {(ids[parent], ids[child]) for child, parents in GRAPH.items() for parent in parents}


def test_graph_without_dependencies_still_shows_the_region() -> None:
    step = narrowed({FAILED: "boom"}, SKIPPED, None)
    markdown = summary.summary(
        Outcome(
            status="planned",
            headline="planned",
            strategy="select",
            exit_code=0,
            previous=PREVIOUS,
            plan=make_plan(step),
        )
    )
    [graph] = fences(markdown, "mermaid")
    assert "-->" not in graph and graph.count(":::failed") == 1 and graph.count(":::skipped") == 3
    assert "dependencies not available" in markdown


def test_a_big_region_is_capped_nearest_nodes_first() -> None:
    skipped = tuple(f"model.shop.m{i:04d}" for i in range(500))
    graph = {skipped[0]: (FAILED,), **{skipped[i]: (skipped[i - 1],) for i in range(1, 500)}}
    step = narrowed({FAILED: "boom"}, tuple(reversed(skipped)), graph)
    [chart] = fences(
        summary.summary(
            Outcome(
                status="planned", headline="p", strategy="select", exit_code=0, previous=PREVIOUS, plan=make_plan(step)
            )
        ),
        "mermaid",
    )
    labels = re.findall(r'\["([^"]*)"\]', chart)
    assert labels[: summary.MAX_GRAPH_NODES] == [FAILED, *skipped[: summary.MAX_GRAPH_NODES - 1]]
    assert labels[-1] == f"and {501 - summary.MAX_GRAPH_NODES} more"
    assert chart.count("-->") == summary.MAX_GRAPH_NODES - 1


def test_steps_table_has_one_row_per_command() -> None:
    page, parsed = render(summary.summary(OUTCOME))
    assert parsed.count("table") == 1
    assert [t for t, _ in parsed.tags].count("th") == 3
    assert parsed.count("tr") == 1 + 3
    assert "dropped (it succeeded)" in page and "narrowed to 4 nodes" in page and "rerun as written" in page


def test_failed_node_messages_are_collapsible() -> None:
    page, parsed = render(summary.summary(OUTCOME))
    assert parsed.count("details") == 2  # one failed node, and the steps_override sent
    assert "<summary><code>model.shop.stg_orders</code>: error</summary>" in page
    assert "permission denied for stg_orders" in page
    assert parsed.balanced


def test_a_multi_line_error_keeps_its_lines_bounded_and_inert() -> None:
    sql = "\n".join(f"  line {i}: select * from <raw>.orders -- `x` | [y](z)" for i in range(40))
    message = f"Compilation Error in model stg_orders\n{sql}\n</pre></details><script>alert(1)</script>"
    step = narrowed({FAILED: message}, (), None)
    page, parsed = render(
        summary.summary(
            Outcome(
                status="error", headline="e", strategy="select", exit_code=1, previous=PREVIOUS, plan=make_plan(step)
            )
        )
    )
    [pre] = re.findall(r"<pre>(?!<code)(.*?)</pre>", page, re.S)
    lines = pre.splitlines()
    assert lines[0] == "Compilation Error in model stg_orders"
    assert lines[1] == "  line 0: select * from &lt;raw&gt;.orders -- `x` | [y](z)", "kept verbatim, indented"
    assert len(lines) == summary.MAX_MESSAGE_LINES + 1 and lines[-1] == "… 17 more lines"
    assert parsed.balanced
    long_line = summary.block("x" * 5000 + "\nsecond line", limit=100)
    assert long_line == "<pre>" + "x" * 100 + "…\n… 1 more lines</pre>"
    assert summary.block("a\n\nb…") == "<pre>a\n\nb…</pre>", "blank lines kept; a line may end in …"
    hostile = narrowed({FAILED: "Database Error\n</pre></details><script>alert(1)</script>\n```"}, (), None)
    page, parsed = render(
        summary.summary(
            Outcome(
                status="error", headline="e", strategy="select", exit_code=1, previous=PREVIOUS, plan=make_plan(hostile)
            )
        )
    )
    assert "&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;" in page and "<script" not in page and parsed.balanced


def test_new_run_results_are_rendered_when_waited_for() -> None:
    results = {
        4: [
            NodeResult("model.shop.orders", "success"),
            NodeResult("test.shop.unique_orders_id.9", "fail", "Got 2 results, configured to fail if != 0"),
            NodeResult(FAILED, "success"),
        ]
    }
    outcome = Outcome(
        status="error",
        headline="run #1002 error",
        strategy="select",
        exit_code=1,
        previous=PREVIOUS,
        plan=make_plan(STEP),
        new_run=NEW,
        new_results=results,
    )
    page, parsed = render(summary.summary(outcome))
    assert "<h3>Results of run #1002</h3>" in page
    assert "<details open>" in page, "a step with problems is expanded"
    assert "new run step 4 <code>dbt build --select stg_orders+</code>: 1 fail, 2 success" in page
    section = page.split("<h3>Results of run #1002</h3>")[1]
    rows = re.findall(r"<tr>\s*<td><code>([^<]+)</code></td>\s*<td>([^<]+)</td>", section)
    assert rows == [("test.shop.unique_orders_id.9", "fail")], "only the problems are listed; counts say the rest"
    assert parsed.balanced


def test_steps_that_went_well_are_one_tight_list() -> None:
    results = {4: [NodeResult("model.shop.orders", "success")], 5: [NodeResult("test.shop.t", "pass")]}
    page, parsed = render(summary.new_run_results(NEW, results))
    assert parsed.count("ul") == 1 and parsed.count("li") == 2 and parsed.count("p") == 0, page


def test_new_run_results_are_capped() -> None:
    results = {4: [NodeResult(f"model.shop.m{i}", "error") for i in range(summary.MAX_RESULT_ROWS + 7)]}
    section = summary.new_run_results(NEW, results)
    assert "<details open>" in section and "…and 7 more nodes." in section
    assert section.count("| <code>") == summary.MAX_RESULT_ROWS


def test_no_plan_no_new_run_still_reads_well() -> None:
    page, parsed = render(
        summary.summary(
            Outcome(
                status="error", headline="Input `job-id` must be a positive integer", strategy="select", exit_code=1
            )
        )
    )
    assert "<h2>❌ dbt Cloud restart: Input `job-id` must be a positive integer</h2>" in page, "no code span"
    assert parsed.count("table") == 0 and parsed.balanced


def test_a_hostile_href_cannot_break_the_link() -> None:
    run = make_run(5, ERROR, href="https://x.test/a b)<script>[")
    page, parsed = render(
        summary.summary(Outcome(status="skipped", headline="s", strategy="select", exit_code=0, previous=run))
    )
    [href] = [a.get("href") for t, a in parsed.tags if t == "a"]
    assert href is not None and href.startswith("https://x.test/a%20b%29%3Cscript%3E")
    assert "<script" not in page
    javascript = make_run(6, ERROR, href="javascript:alert(1)")
    assert "javascript" not in summary.summary(
        Outcome(status="skipped", headline="s", strategy="select", exit_code=0, previous=javascript)
    )


remote = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@settings(max_examples=60, deadline=None)
@given(
    uids=st.lists(remote.filter(str.strip), min_size=1, max_size=6, unique=True),
    message=remote,
    status=remote.filter(lambda s: s not in summary.OK_STATUSES),  # a node not done: listed in its table
)
def test_remote_text_never_breaks_the_structure(uids: list[str], message: str, status: str) -> None:
    failures = tuple(NodeResult(uid, "error", message + "\n```\n</details><script>x</script>|") for uid in uids[:2])
    step = StepPlan(
        "dbt build",
        5,
        "narrow",
        "failed",
        "dbt build --select x",
        tuple(uids),
        failures,
        graph={uids[-1]: (uids[0],)},
    )
    results = {4: [NodeResult(uid, status, message + "|`") for uid in uids]}
    outcome = Outcome(
        status="error",
        headline=message,
        strategy="select",
        exit_code=1,
        previous=PREVIOUS,
        plan=make_plan(step),
        new_run=NEW,
        new_results=results,
    )
    markdown = summary.summary(outcome)
    page, parsed = render(markdown)
    assert "<script" not in page.lower()
    assert parsed.balanced, page
    assert len(fences(markdown, "mermaid")) == 1
    assert parsed.count("table") == 2
    for table in re.findall(r"<table>.*?</table>", page, re.S):
        for row in re.findall(r"<tr>.*?</tr>", table, re.S):
            assert row.count("<td") + row.count("<th") == 3, row


def test_huge_failures_stay_within_the_summary_budget() -> None:
    failures = {f"model.shop.m{i:05d}": "x" * 5000 for i in range(20_000)}
    step = narrowed(failures, (), None)
    step = StepPlan(**{**step.__dict__, "new_command": "dbt build --select " + " ".join(failures)})
    results = {4: [NodeResult(uid, "error", "y" * 5000) for uid in failures]}
    outcome = Outcome(
        status="error",
        headline="e",
        strategy="select",
        exit_code=1,
        previous=PREVIOUS,
        plan=make_plan(step),
        new_run=NEW,
        new_results=results,
    )
    markdown = summary.summary(outcome)
    assert len(markdown.encode()) < summary.SUMMARY_BUDGET
    assert "more failed nodes" in markdown and "more nodes." in markdown
    _, parsed = render(markdown)
    assert parsed.balanced


def test_sections_that_do_not_fit_are_left_out_whole() -> None:
    markdown = summary.summary(OUTCOME, budget=1500)
    assert len(markdown.encode()) < 1500
    assert "left out to keep the summary within" in markdown
    _, parsed = render(markdown)
    assert parsed.balanced


# What differs from one demo run to the next: clock times and durations.
VOLATILE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}( UTC)?|\b\d+(\.\d+)? ?(seconds?|minutes?|hours?|s|ms)\b")


def stable(markdown: str) -> str:
    return VOLATILE.sub("<time>", markdown)


def test_the_sample_in_docs_is_what_the_demo_writes(tmp_path: Path) -> None:
    """docs/sample-summary.md is regenerated by the demo (`python -m tests.demo --sample ...`) and equal
    to the committed one but for times: a change to the summary fails here until the sample follows."""
    committed = (Path(__file__).resolve().parent.parent / "docs" / "sample-summary.md").read_text()
    with contextlib.redirect_stdout(io.StringIO()):
        assert demo.main(["--sample", str(tmp_path / "sample.md")]) == 0
    sample = (tmp_path / "sample.md").read_text()
    assert stable(sample) == stable(committed), "run `python -m tests.demo --sample docs/sample-summary.md`"
    page, parsed = render(sample)
    assert parsed.balanced and len(fences(sample, "mermaid")) == 1
    assert parsed.count("table") == 2, "both runs compared, the steps table; the new run had no problem to list"
    assert "Verified: 6 of 6 planned nodes ran" in sample and "that already succeeded: about" in sample
    assert "new run step 4" in sample and "29 pass" in sample
    assert "n0 --> n1" in sample, "the failure region draws its edges"
    assert "<h2>✅ dbt Cloud restart:" in page


def test_a_region_without_failed_nodes_only_counts_what_reruns() -> None:
    step = narrowed({}, SKIPPED, GRAPH)
    markdown = summary.summary(
        Outcome(status="error", headline="e", strategy="select", exit_code=1, previous=PREVIOUS, plan=make_plan(step))
    )
    assert "step 5, <code>dbt build</code>: 3 nodes rerun (grey)" in markdown and "0 failed" not in markdown


def test_the_new_runs_context_is_shown_with_where_each_value_comes_from() -> None:
    hostile = "<b>x</b>|`y`"
    trigger = {"git_sha": "9f1c2ab3e4d5", "schema_override": hostile, "threads_override": 8, "git_branch": "f"}
    context = merge(context_from_json(trigger), {"threads_override": 2, "git_branch": None})
    checked = ContextCheck(("schema_override: sent 'a', its trigger records none",))
    outcome = replace(OUTCOME, context=context, context_check=checked)
    markdown = summary.summary(outcome)
    page, parsed = render(markdown)
    assert parsed.balanced and "<b>x</b>" not in page
    assert (
        "- Context: 2 fields kept from run #1001, 1 field from `payload` (below); ⚠️ the new run's trigger" in markdown
    )
    rows = [line for line in markdown.split("### Context of the new run", 1)[1].splitlines() if line.startswith("| `")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| `git_sha`",
        "| `schema_override`",
        "| `threads_override`",
        "| `git_branch`",
    ]
    assert rows[2].endswith("| `payload` |") and "failed run [#1001]" in rows[0]
    assert "`payload` sets it to null: the job's default" in rows[3]
    assert "📌 The new run checks out commit <code>9f1c2ab3e4d5</code> again" in markdown

    defaults = summary.summary(replace(OUTCOME, context=merge(context_from_json(trigger), {}, "job-defaults")))
    assert "- Context: the job's defaults (`context: job-defaults`)" in defaults and "📌" not in defaults
    scheduled = summary.summary(
        replace(OUTCOME, context=merge(context_from_json({}), {}), context_check=ContextCheck())
    )
    assert (
        "- Context: the job's defaults (run #1001 was started without overrides); the new run's trigger carries it ✅"
        in scheduled
    )
    assert "### Context of the new run" not in scheduled
    native = summary.summary(replace(OUTCOME, strategy="native", plan=None))
    assert "- Context: the failed run's own, kept by dbt Cloud's rerun itself" in native
