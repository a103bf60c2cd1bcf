"""The outcome of one restart, and its rendering as action outputs and a Markdown job summary."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from restart.plan import Plan, StepPlan
from restart.records import Run

MAX_MESSAGE = 600
MAX_FAILED_NODES = 50
MAX_SENT_IN_SUMMARY = 4000  # characters of each steps_override command shown in the summary
OUTPUT_BUDGET = 900_000  # bytes of output values; GitHub drops a job's outputs past 1 MB
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


@dataclass(frozen=True)
class Outcome:
    """Everything the outputs, the summary and the exit code are made from."""

    status: str
    headline: str
    exit_code: int = 0
    previous: Run | None = None
    plan: Plan | None = None
    new_run: Run | None = None
    strategy: str = "select"
    details: tuple[str, ...] = field(default=())

    @property
    def restarted(self) -> bool:
        return self.new_run is not None


def outputs(outcome: Outcome) -> dict[str, str]:
    """The action's outputs; every key is always written."""
    plan = outcome.plan
    return {
        "run-id": str(outcome.new_run.id) if outcome.new_run else "",
        "run-url": outcome.new_run.href if outcome.new_run else "",
        "status": outcome.status,
        "previous-run-id": str(outcome.previous.id) if outcome.previous else "",
        "restarted": "true" if outcome.restarted else "false",
        "steps": json.dumps(plan.steps_override if plan else []),
        "rerun-nodes": json.dumps(plan.rerun_nodes if plan else []),
    }


def fit_outputs(values: dict[str, str], budget: int = OUTPUT_BUDGET) -> tuple[dict[str, str], str]:
    """Outputs within GitHub's 1 MB per job: `rerun-nodes` is shortened first; (outputs, warning)."""
    size = sum(len(v.encode()) for v in values.values())
    if size <= budget:
        return values, ""
    nodes: list[str] = json.loads(values["rerun-nodes"])
    room = budget - (size - len(values["rerun-nodes"].encode()))
    kept: list[str] = []
    used = 2
    for node in nodes:
        used += len(json.dumps(node).encode()) + 2
        if used > room:
            break
        kept.append(node)
    warning = f"output rerun-nodes lists {len(kept)} of {len(nodes)} nodes: GitHub keeps 1 MB of outputs per job"
    return {**values, "rerun-nodes": json.dumps(kept)}, warning


def text(value: str, limit: int = MAX_MESSAGE) -> str:
    """Remote text made safe for Markdown: HTML escaped, one line, bounded."""
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return html.escape(value, quote=False).replace("|", "\\|").replace("`", "&#96;")


def code(value: str, limit: int = 300) -> str:
    """An inline code span that survives any content (tables included)."""
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = html.escape(value, quote=False).replace("|", "&#124;").replace("`", "&#96;")
    return f"<code>{value}</code>"


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit] + f" … ({len(value) - limit} more characters)"


def _run_link(run: Run) -> str:
    label = f"#{run.id}"
    return f"[{label}]({run.href})" if run.href.startswith(("http://", "https://")) else label


def _step_cell(step: StepPlan) -> str:
    if step.action == "skip":
        return "skipped: succeeded"
    if step.action == "narrow":
        return f"narrowed to {len(step.nodes)} node(s): {code(step.new_command)}"
    return f"rerun as is: {text(step.reason, 120)}"


def _previous_cell(step: StepPlan, previous: Run) -> str:
    if step.step_index is None:
        return "not reached"
    found = next((s for s in previous.steps if s.index == step.step_index), None)
    status = found and {10: "✅ success", 20: "❌ error", 30: "🚫 cancelled"}.get(found.status)
    return f"step {step.step_index}: {status or 'unfinished'}"


def summary(outcome: Outcome) -> str:
    """The job summary: outcome, both runs, the per-step plan and the failed nodes."""
    icon = ICONS.get(outcome.status, "🔁")
    lines = [f"## {icon} dbt Cloud restart: {text(outcome.headline, 200)}", ""]
    previous, new = outcome.previous, outcome.new_run
    if previous:
        lines.append(
            f"- Previous run: {_run_link(previous)}, **{previous.status_name}**"
            + (f" (job {previous.job_id}{f' `{text(previous.job.name, 80)}`' if previous.job else ''})")
        )
    if new:
        duration = f" in {text(new.duration, 40)}" if new.duration and new.is_complete else ""
        lines.append(f"- New run: {_run_link(new)}, **{outcome.status}**{duration}")
    lines.append(f"- Strategy: `{outcome.strategy}`; status: `{outcome.status}`")
    lines.extend(f"- {text(detail, 300)}" for detail in outcome.details)
    plan = outcome.plan
    if plan and previous:
        lines += ["", f"### Steps of run #{previous.id}", "", "| Command | Previous run | Restart |", "|---|---|---|"]
        lines += [f"| {code(s.command)} | {_previous_cell(s, previous)} | {_step_cell(s)} |" for s in plan.steps]
        if plan.warnings:
            lines += ["", "**Warnings**", ""] + [f"- {text(w, 400)}" for w in plan.warnings]
        failures = [f for s in plan.steps for f in s.failures]
        if failures:
            lines += ["", f"### Failed nodes ({len(failures)})", ""]
            for failure in failures[:MAX_FAILED_NODES]:
                lines += [
                    "<details>",
                    f"<summary>{code(failure.unique_id, 200)}: {text(failure.status, 30)}</summary>",
                    "",
                    text(failure.message) or "_no message_",
                    "",
                    "</details>",
                ]
            if len(failures) > MAX_FAILED_NODES:
                lines.append(f"\n…and {len(failures) - MAX_FAILED_NODES} more failed nodes.")
        if plan.steps_override:
            lines += ["", "<details><summary>steps_override sent</summary>", "", "```text"]
            lines += [_clip(s.replace("`" * 3, "'" * 3), MAX_SENT_IN_SUMMARY) for s in plan.steps_override]
            lines += ["```", "", "</details>"]
    return "\n".join(lines) + "\n"
