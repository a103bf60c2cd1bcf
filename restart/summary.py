"""The Markdown job summary of one restart (or of several jobs' restarts)."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from restart.artifacts import NodeResult
from restart.avoided import headline as avoided_headline
from restart.dbt_vocabulary import DONE
from restart.outcome import Outcome
from restart.overrides import FROM_RUN, NewContext
from restart.plan import Plan, StepPlan, step_command
from restart.records import Run
from restart.transient import Failure
from restart.verify import headline as verified_headline

MAX_MESSAGE = 600
MAX_MESSAGE_LINES = 25  # lines of one failed node's message in the summary
MAX_FAILED_NODES = 50
MAX_SENT_IN_SUMMARY = 4000  # characters of each steps_override command shown in the summary
SUMMARY_BUDGET = 1_000_000  # bytes of job summary; GitHub drops one over 1 MiB
MAX_GRAPH_NODES = 30  # nodes drawn in one failure-region graph; the rest are "and N more"
MAX_GRAPH_EDGES = 120
MAX_GRAPHS = 5  # steps with a failure-region graph
MAX_LABEL = 80
MAX_RESULT_ROWS = 200  # rows of the new run's per-node results, over all steps
OK_STATUSES = DONE
ICONS = {
    "success": "✅",
    "error": "❌",
    "cancelled": "🚫",
    "timeout": "⏱️",
    "skipped": "⏭️",
    "planned": "📝",
    "queued": "🕒",
    "starting": "🕒",
    "running": "🏃",
    "failed": "❌",
}


def summary_by_job(outcomes: Sequence[tuple[int, Outcome]], budget: int = SUMMARY_BUDGET) -> str:
    """A multi-job summary: one line per job, then each job's own summary (sharing the size budget)."""
    lines = [f"# dbt Cloud restart of {len(outcomes)} jobs", "", "| Job | Status | New run |", "|---|---|---|"]
    for job, outcome in outcomes:
        new = _run_link(outcome.new_run) if outcome.new_run else "none"
        lines.append(f"| {job} | {ICONS.get(outcome.status, '🔁')} {text(outcome.status, 20)} | {new} |")
    head = "\n".join(lines) + "\n\n"
    share = max((budget - len(head.encode())) // max(len(outcomes), 1), 4096)
    return head + "\n".join(summary(outcome, share) for _, outcome in outcomes)


def _inert(value: str) -> str:
    """Markdown's active characters as entities: no code span, escape, link or image can start."""
    return value.replace("\\", "&#92;").replace("`", "&#96;").replace("[", "&#91;").replace("]", "&#93;")


def text(value: str, limit: int = MAX_MESSAGE) -> str:
    """Remote text made safe for Markdown: HTML escaped, one line, bounded."""
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return _inert(html.escape(value, quote=False)).replace("|", "\\|")


def block(value: str, limit: int = MAX_MESSAGE, max_lines: int = MAX_MESSAGE_LINES) -> str:
    """Remote multi-line text (a dbt error with its SQL) as a `<pre>` block: lines kept, bounded, inert."""
    lines = [line.rstrip() for line in value.strip("\n").splitlines()]
    kept: list[str] = []
    used = 0
    for line in lines[:max_lines]:
        if used + len(line) > limit:
            kept.append(line[: max(limit - used, 0)] + "…")
            break
        kept.append(line)
        used += len(line)
    if len(kept) < len(lines):
        kept.append(f"… {len(lines) - len(kept)} more lines")
    # An HTML block: Markdown is not read inside it, and escaped text cannot close it.
    return "<pre>" + "\n".join(html.escape(line, quote=False) for line in kept) + "</pre>"


def code(value: str, limit: int = 300) -> str:
    """An inline code span that survives any content (tables included)."""
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = _inert(html.escape(value, quote=False)).replace("|", "&#124;")
    return f"<code>{value}</code>"


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit] + f" … ({len(value) - limit} more characters)"


def _url(href: str) -> str:
    """A remote URL made safe inside a Markdown link target; '' unless it is http(s)."""
    if not href.startswith(("http://", "https://")):
        return ""
    return urllib.parse.quote(href, safe=":/?#@!$&'*+,;=%~.-_[]")


def _run_link(run: Run) -> str:
    url = _url(run.href)
    return f"[#{run.id}]({url})" if url else f"#{run.id}"


def _step_cell(step: StepPlan) -> str:
    if step.action == "skip":
        return "dropped (it succeeded)"
    if step.action == "narrow":
        added = f" (with {_count(len(step.added), 'parent')} of failed tests: {code(', '.join(step.added), 200)})"
        narrowed = (
            f"narrowed to {_count(len(step.nodes), 'node')}{added if step.added else ''}: {code(step.new_command)}"
        )
        return narrowed + (f"; {text(step.reason, 400)}" if step.batches else "")
    return f"rerun as written ({text(step.reason, 120)})"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _when(stamp: str) -> str:
    """`2026-11-24 22:33:37.08+00:00` as `2026-11-24 22:33 UTC` (as given when it does not parse)."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return text(stamp, 40)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _previous_cell(step: StepPlan, previous: Run) -> str:
    if step.step_index is None:
        return "not reached"
    found = next((s for s in previous.steps if s.index == step.step_index), None)
    status = found and {10: "✅ success", 20: "❌ error", 30: "🚫 cancelled"}.get(found.status)
    if found and found.skipped:
        status = f"{ICONS['skipped']} skipped"
    elif found and previous.timed_out and step.reason.startswith("timed out"):
        status = f"{ICONS['timeout']} timed out"
    return f"step {step.step_index}: {status or 'unfinished'}"


def _status(name: str) -> str:
    return f"{ICONS.get(name, '🔁')} {name}"


def _header(outcome: Outcome) -> list[str]:
    """The outcome in one heading, then both runs, linked."""
    icon = "⚠️" if outcome.status == "success" and outcome.exit_code else ICONS.get(outcome.status, "🔁")
    lines = [f"## {icon} dbt Cloud restart: {text(outcome.headline, 200)}", ""]
    saved = outcome.avoided
    if saved and (saved.nodes or saved.seconds or saved.unknown_steps):
        lines += [f"**{text(avoided_headline(saved), 300)}**", ""]
    previous, new = outcome.previous, outcome.new_run
    if previous:
        job = f"job {previous.job_id}" + (
            f" {code(previous.job.name, 80)}" if previous.job and previous.job.name else ""
        )
        finished = f", finished {_when(previous.finished_at)}" if previous.finished_at else ""
        state = f"{ICONS['timeout']} timed out" if previous.timed_out else _status(previous.status_name)
        lines.append(f"- **Previous run** {_run_link(previous)}: {state} ({job}{finished})")
    if new:
        took = f" in {text(new.duration, 40)}" if new.duration and new.is_complete else ""
        lines.append(f"- **New run** {_run_link(new)}: {_status(outcome.status)}{took}")
    elif previous:
        lines.append(f"- **New run**: none started ({text(outcome.status, 20)})")
    if outcome.verdict:
        lines.append(f"- {'✅' if outcome.verdict.verified else '⚠️'} {text(verified_headline(outcome.verdict), 600)}")
    if outcome.strategy:
        lines.append(f"- Strategy: `{text(outcome.strategy, 20)}`")
    lines += _context_line(outcome)
    if outcome.plan and outcome.plan.engine:
        lines.append(f"- Engine of the failed run: {text(outcome.plan.engine, 120)}")
    lines.extend(f"- {text(detail, 300)}" for detail in outcome.details)
    return lines


def _context_line(outcome: Outcome) -> list[str]:
    """One line on the new run's context: where it comes from, and whether the new run got it."""
    context, previous, check = outcome.context, outcome.previous, outcome.context_check
    if context is None:
        if outcome.strategy == "native" and previous and (outcome.new_run or outcome.status == "planned"):
            return ["- Context: the failed run's own, kept by dbt Cloud's rerun itself"]
        return []
    run = f"run #{previous.id}" if previous else "the failed run"
    kept = len([s for s in context.sent if s.source == FROM_RUN])
    given = len(context.sent) - kept
    if not context.sent:
        why = "`context: job-defaults`" if context.left else f"{run} was started without overrides"
        line = f"- Context: the job's defaults ({why})"
    else:
        parts = [f"{_count(kept, 'field')} kept from {run}"] if kept else []
        parts += [f"{_count(given, 'field')} from `payload`"] if given else []
        line = f"- Context: {', '.join(parts)} (below)"
    if check is not None and check.verified:
        line += "; the new run's trigger carries it ✅"
    elif check is not None and check.unknown:
        line += "; ⚠️ the new run was read without its trigger: not checked"
    elif check is not None:
        line += f"; ⚠️ the new run's trigger differs: {text('; '.join(check.differences), 400)}"
    return [line]


def _context_table(context: NewContext | None, previous: Run | None) -> list[str]:
    """The new run's context field by field, with where each value comes from, and what was left out."""
    if context is None or not (context.sent or context.left):
        return []
    run = f"failed run {_run_link(previous)}" if previous else "the failed run"
    lines = ["", "### Context of the new run", "", "| Field | Value | From |", "|---|---|---|"]
    for item in context.sent:
        source = run if item.source == FROM_RUN else "`payload`"
        lines.append(f"| `{item.key}` | {code(str(item.value), 120)} | {source} |")
    for left in context.left:
        lines.append(f"| `{left.key}` | ~~{code(str(left.value), 120)}~~ not sent | {left.why}: the job's default |")
    if context.pinned_sha:
        lines += [
            "",
            f"📌 The new run checks out commit {code(context.pinned_sha, 60)} again, as the failed run did: it reruns"
            ' the code that failed. To run the branch\'s newest code instead, set `payload: {"git_sha": null}`'
            " (or `context: job-defaults`).",
        ]
    return lines


def _compared(outcome: Outcome) -> list[str]:
    """The failed run next to the restart: how long each took and how many nodes each ran."""
    previous, new, saved = outcome.previous, outcome.new_run, outcome.avoided
    if previous is None or new is None or saved is None:
        return []
    notes = ["in the steps whose results were read"] if saved.previous_partial else []
    unreached = len([s for s in outcome.plan.steps if s.step_index is None]) if outcome.plan else 0
    notes += [f"{_count(unreached, 'step')} not reached"] if unreached else []
    before = f"{saved.previous_nodes}" + (f" ({'; '.join(notes)})" if notes else "")
    results = outcome.new_results
    after = str(sum(len(r) for r in results.values())) if results is not None else "not known yet"
    took = text(new.duration, 40) if new.is_complete and new.duration else "not finished"
    return [
        "",
        f"| | Failed run {_run_link(previous)} | Restart {_run_link(new)} |",
        "|---|---|---|",
        f"| Duration | {text(previous.duration, 40) or 'unknown'} | {took} |",
        f"| Nodes | {before} | {after} |",
    ]


def _classes(classified: Sequence[Failure]) -> list[str]:
    """With `restart-on: transient`: each failure, transient or persistent, and why."""
    if not classified:
        return []
    lines = ["", "### Failures by class", "", "| Failure | Class | Why |", "|---|---|---|"]
    for failure in classified[:MAX_FAILED_NODES]:
        kind = "🔁 transient" if failure.transient else "⛔ persistent"
        lines.append(f"| {code(failure.where, 200)} | {kind} | {text(failure.reason, 200)} |")
    if len(classified) > MAX_FAILED_NODES:
        lines.append(f"\n…and {len(classified) - MAX_FAILED_NODES} more failures.")
    return lines


def _mermaid_label(unique_id: str) -> str:
    """A node label that cannot break out of its quotes, the code fence or into HTML."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-/ ") else "_" for c in unique_id)
    return cleaned if len(cleaned) <= MAX_LABEL else cleaned[: MAX_LABEL - 3] + "..."


def _region(step: StepPlan, limit: int) -> tuple[list[str], set[str], list[tuple[str, str]]]:
    """The nodes shown (failed first, then what they skipped, nearest first), failed ids and edges."""
    failed = [f.unique_id for f in step.failures]
    everything = list(dict.fromkeys([*failed, *step.nodes]))
    parents = step.graph
    children: dict[str, list[str]] = {}
    for child, its_parents in parents.items():
        for parent in its_parents:
            children.setdefault(parent, []).append(child)
    order: list[str] = list(dict.fromkeys(failed))
    seen = set(order)
    frontier = list(order)
    while frontier:  # breadth first from the failures, so the nearest skipped nodes are kept
        following = []
        for node in frontier:
            for child in children.get(node, ()):
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    following.append(child)
        frontier = following
    order += [n for n in everything if n not in seen]
    wanted = set(everything)
    shown = [n for n in order if n in wanted][:limit]
    kept = set(shown)
    edges = [(p, c) for c in shown for p in parents.get(c, ()) if p in kept and p != c]
    return shown, set(failed), edges[:MAX_GRAPH_EDGES]


def mermaid(step: StepPlan, limit: int = MAX_GRAPH_NODES) -> str:
    """A mermaid flowchart of one step's failure region; '' when nothing failed or was skipped."""
    shown, failed, edges = _region(step, limit)
    if not shown:
        return ""
    total = len(dict.fromkeys([*failed, *step.nodes]))
    ids = {uid: f"n{i}" for i, uid in enumerate(shown)}
    lines = [
        "```mermaid",
        "flowchart LR",
        "  classDef failed fill:#ffd7d5,stroke:#cf222e,color:#1f2328",
        "  classDef skipped fill:#eaeef2,stroke:#8c959f,color:#1f2328,stroke-dasharray:4 3",
    ]
    for uid in shown:
        lines.append(f'  {ids[uid]}["{_mermaid_label(uid)}"]:::{"failed" if uid in failed else "skipped"}')
    lines += [f"  {ids[parent]} --> {ids[child]}" for parent, child in edges]
    if total > len(shown):
        lines.append(f'  more["and {total - len(shown)} more"]:::skipped')
    lines.append("```")
    return "\n".join(lines)


def _region_counts(failed: int, skipped: int) -> str:
    if not failed:
        return f"{_count(skipped, 'node')} rerun (grey)"
    them = "it" if failed == 1 else "them"
    return f"**{failed} failed** (red) and {_count(skipped, 'more node')} rerun with {them} (grey)"


def _one_region_per_step(steps: Sequence[StepPlan]) -> list[StepPlan]:
    """Commands planned for the same step of the previous run (microbatch windows, then the rest) as one."""
    joined: list[StepPlan] = []
    for step in steps:
        last = joined[-1] if joined else None
        if last is not None and step.step_index is not None and step.step_index == last.step_index:
            step = replace(
                last,
                nodes=tuple(dict.fromkeys([*last.nodes, *step.nodes])),
                failures=(*last.failures, *step.failures),
                graph={**last.graph, **step.graph},
            )
            joined[-1] = step
        else:
            joined.append(step)
    return joined


def _failure_region(plan: Plan) -> list[str]:
    regions = [s for s in _one_region_per_step(plan.steps) if s.failures or s.nodes]
    if not regions:
        return []
    lines = ["", "### Failure region", ""]
    for step in regions[:MAX_GRAPHS]:
        failed = len(step.failures)
        skipped = len(set(step.nodes) - {f.unique_id for f in step.failures})
        where = f"step {step.step_index}" if step.step_index is not None else "a step"
        lines += [
            f"{where}, {code(step.command, 120)}: {_region_counts(failed, skipped)}"
            + ("" if step.graph else "; dependencies not available"),
            "",
            mermaid(step),
            "",
        ]
    if len(regions) > MAX_GRAPHS:
        lines.append(f"…and {len(regions) - MAX_GRAPHS} more steps with failures.")
    return lines


def _steps_table(plan: Plan, previous: Run) -> list[str]:
    lines = ["", f"### Steps of run #{previous.id}", "", "| Command | Previous run | Restart |", "|---|---|---|"]
    lines += [f"| {code(s.command)} | {_previous_cell(s, previous)} | {_step_cell(s)} |" for s in plan.steps]
    if plan.warnings:
        lines += ["", "**Warnings**", ""] + [f"- {text(w, 400)}" for w in plan.warnings]
    return lines


def _failed_nodes(plan: Plan) -> list[str]:
    failures = [f for s in plan.steps for f in s.failures]
    if not failures:
        return []
    lines = ["", f"### Failed nodes ({len(failures)})", ""]
    for failure in failures[:MAX_FAILED_NODES]:
        lines += [
            "<details>",
            f"<summary>{code(failure.unique_id, 200)}: {text(failure.status, 30)}</summary>",
            "",
            block(failure.message, 2000) if failure.message.strip() else "_no message_",
            "",
            "</details>",
        ]
    if len(failures) > MAX_FAILED_NODES:
        lines.append(f"\n…and {len(failures) - MAX_FAILED_NODES} more failed nodes.")
    return lines


def _counts(results: Sequence[NodeResult]) -> str:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (item[0] in OK_STATUSES, -item[1], item[0]))
    return ", ".join(f"{n} {text(status, 30) or 'no status'}" for status, n in ordered) or "no nodes"


def new_run_results(run: Run | None, results: Mapping[int, Sequence[NodeResult]], limit: int = MAX_RESULT_ROWS) -> str:
    """The new run's final per-node results, one collapsible table per step, problems first."""
    if not results:
        return ""
    title = f"run #{run.id}" if run else "the new run"
    names = {s.index: s.name for s in run.steps} if run else {}
    lines = [f"### Results of {title}", ""]
    shown = 0
    for index in sorted(results):
        everything = results[index]
        rows = sorted((r for r in everything if r.status not in OK_STATUSES), key=lambda r: r.unique_id)
        name = names.get(index, "")
        command = code(step_command(name) or name, 160) if name else ""
        heading = f"new run step {index} {command}: {_counts(list(everything))}"
        if not rows:  # all went well: the counts say it all, one item of a tight list
            lines.append(f"- {heading}")
            continue
        if lines[-1]:
            lines.append("")
        lines += ["<details open>", f"<summary>{heading}</summary>", ""]
        room = max(limit - shown, 0)
        if rows and room:
            lines += ["| Node | Status | Message |", "|---|---|---|"]
            lines += [
                f"| {code(r.unique_id, 200)} | {text(r.status, 30)} | {text(r.message, 200)} |" for r in rows[:room]
            ]
        shown += min(len(rows), room)
        if len(rows) > room:
            lines += ["", f"…and {len(rows) - room} more nodes."]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def _sent(plan: Plan) -> list[str]:
    if not plan.steps_override:
        return []
    lines = ["", "<details><summary>steps_override sent</summary>", "", "```text"]
    lines += [_clip(s.replace("`" * 3, "'" * 3), MAX_SENT_IN_SUMMARY) for s in plan.steps_override]
    return [*lines, "```", "", "</details>"]


def summary(outcome: Outcome, budget: int = SUMMARY_BUDGET) -> str:
    """The job summary: outcome, both runs, the failure region, the per-step plan, the failed nodes,
    the new run's results (when waited for) and the commands sent; within `budget` bytes.

    Sections are added in order of importance; one that would not fit is replaced by a note.
    """
    sections: list[list[str]] = [
        _header(outcome),
        _compared(outcome),
        _context_table(outcome.context, outcome.previous),
    ]
    plan, previous = outcome.plan, outcome.previous
    if plan and previous:
        sections += [_classes(outcome.classified), _failure_region(plan), _steps_table(plan, previous)]
        sections.append(_failed_nodes(plan))
    if outcome.new_results:
        sections.append(["", new_run_results(outcome.new_run, outcome.new_results)])
    if plan and previous:
        sections.append(_sent(plan))
    out: list[str] = []
    used = 0
    for section in sections:
        if not section:
            continue
        chunk = "\n".join(section) + "\n"
        size = len(chunk.encode())
        if used + size > budget - 200:
            out.append("\n_A section was left out to keep the summary within GitHub's 1 MiB limit._\n")
            break
        out.append(chunk)
        used += size
    return "".join(out)
