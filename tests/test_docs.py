"""The README, the examples and the CLI stay in sync with action.yml."""

import re
import textwrap
from typing import Any

import yaml

from restart.cli import EXIT_CODES, INPUTS
from tests.runner import ROOT, action_metadata


def readme_table(heading: str) -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        table[cells[0].strip("`")] = cells[1:]
    return table


def test_cli_knows_every_input_in_order() -> None:
    assert list(action_metadata()["inputs"]) == INPUTS


def test_readme_inputs_match_action_yml() -> None:
    table = readme_table("Inputs")
    inputs = action_metadata()["inputs"]
    assert list(table) == list(inputs)
    for name, spec in inputs.items():
        required, default, description = table[name]
        assert required == ("yes" if spec.get("required") else "no"), name
        expected_default = "" if "default" not in spec else f"`{spec['default'] or chr(34) * 2}`"
        assert default == expected_default, name
        assert description == spec["description"].strip(), name


def test_readme_outputs_match_action_yml() -> None:
    table = readme_table("Outputs")
    outputs = action_metadata()["outputs"]
    assert list(table) == list(outputs)
    for name, spec in outputs.items():
        assert table[name] == [spec["description"].strip()], name


def test_every_input_and_output_is_described() -> None:
    metadata = action_metadata()
    for group in ("inputs", "outputs"):
        for name, spec in metadata[group].items():
            assert re.fullmatch(r"[a-z][a-z-]*", name), name
            assert spec.get("description"), f"{group}.{name} has no description"


def test_readme_exit_codes_are_the_cli_s() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("| exit code | meaning |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = [tuple(c.strip() for c in row.strip("|").split("|")) for row in table.splitlines()]
    assert rows == list(EXIT_CODES)


def workflow_texts() -> dict[str, str]:
    """Every workflow a user may copy: the README's YAML blocks and examples/*.yml."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    texts = {f"README block {i}": textwrap.dedent(block) for i, block in enumerate(blocks, 1)}
    texts.update({str(path.relative_to(ROOT)): path.read_text() for path in sorted((ROOT / "examples").glob("*.yml"))})
    return texts


def action_steps(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if "dbt-cloud-restart" in str(node.get("uses", "")) else []
        return found + [s for value in node.values() for s in action_steps(value)]
    if isinstance(node, list):
        return [s for item in node for s in action_steps(item)]
    return []


def test_every_copyable_workflow_uses_real_inputs_and_outputs() -> None:
    metadata = action_metadata()
    texts = workflow_texts()
    assert len(texts) >= 8
    used = 0
    for where, text in texts.items():
        steps = action_steps(yaml.safe_load(text))
        for step in steps:
            unknown = set(step.get("with", {})) - set(metadata["inputs"])
            assert not unknown, f"{where}: unknown inputs {unknown}"
            required = {n for n, spec in metadata["inputs"].items() if spec.get("required")}
            assert required <= set(step["with"]), f"{where}: missing {required - set(step['with'])}"
        used += len(steps)
        for output in re.findall(r"steps\.restart\.outputs\.([a-z-]+)", text):
            assert output in metadata["outputs"], f"{where}: no output {output}"
    assert used >= 7
