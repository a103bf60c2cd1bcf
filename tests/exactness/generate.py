"""Random dbt projects for the exactness properties, from one integer seed.

A project has seeds, a layered DAG of models (table, view, ephemeral, incremental) in nested
folders (one folder named like a model), a versioned model, a local package with a model named
like one of the root project's, generic and singular tests, unit tests, a snapshot, a source with
a test, random tags (on models, data tests, unit tests and the source) and YAML selectors. Faults
are injected from outside through DBT_EMULATOR_FAULTS, read by the same macro as
tests/dbt_project's.
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

FAULT_MACROS = Path(__file__).parents[1] / "dbt_project" / "macros" / "emulator_faults.sql"
MATERIALIZATIONS = ["table", "view", "ephemeral", "incremental"]
TAGS = ["t1", "t2"]


@dataclass
class Model:
    name: str
    folder: str
    materialized: str
    parents: list[str]  # refs: model or seed names ("genpkg.m_0" for the package's model)
    tags: list[str] = field(default_factory=list)


@dataclass
class GeneratedProject:
    seed: int
    models: list[Model]
    seeds: list[str]
    folders: list[str]
    selectors: list[str]

    def model(self, name: str) -> Model:
        return next(m for m in self.models if m.name == name)


def _sql(model: Model) -> str:
    def ref(parent: str) -> str:
        if "." in parent:
            package, name = parent.split(".")
            return f"ref('{package}', '{name}')"
        return f"ref('{parent}')"

    lines = []
    config = [f"materialized='{model.materialized}'"]
    if model.tags:
        config.append(f"tags={model.tags!r}")
    lines.append("{{ config(" + ", ".join(config) + ") }}")
    selects = [f"select id, val from {{{{ {ref(p)} }}}}" for p in model.parents]
    lines.append("\nunion all\n".join(selects))
    if model.materialized == "incremental":
        lines.append("{% if is_incremental() %} where 1 = 1 {% endif %}" if len(selects) == 1 else "")
    return "\n".join(lines) + "\n"


def generate(seed: int, root: Path) -> GeneratedProject:
    """Write a random project into `root` (which must not exist) and describe it."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    seeds = ["seed_0", "seed_1"]
    (root / "seeds").mkdir()
    for name in seeds:
        (root / "seeds" / f"{name}.csv").write_text("id,val\n1,a\n2,b\n3,c\n", encoding="utf-8")

    layers = rng.randint(3, 4)
    models: list[Model] = []
    count = 0
    available: list[str] = list(seeds)
    for layer in range(layers):
        made = []
        for _ in range(rng.randint(2, 3)):
            name = f"m_{count}"
            count += 1
            if layer == 0:
                parents = [rng.choice(seeds)]
            else:
                pool = [a for a in available if a not in seeds] or available
                parents = rng.sample(pool, k=min(len(pool), rng.choice([1, 1, 2])))
            folder = rng.choice(["staging", "staging/deep", "marts", ""])
            tags = [t for t in TAGS if rng.random() < 0.35]
            made.append(Model(name, folder, rng.choice(MATERIALIZATIONS), parents, tags))
        models += made
        available += [m.name for m in made]
    # a folder named like a model: `m_0` selects both the model and this folder
    models[-1].folder = f"marts/{models[0].name}"
    # the last model is never ephemeral (something to see), one reads the package's model
    models[-1].materialized = "table"
    models[rng.randrange(len(models))].parents.append("genpkg.m_0")

    model_dir = root / "models"
    for model in models:
        path = model_dir / model.folder / f"{model.name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_sql(model), encoding="utf-8")

    # a versioned model, reading a random model
    versioned_parent = rng.choice([m.name for m in models])
    (model_dir / "marts").mkdir(parents=True, exist_ok=True)
    for version in (1, 2):
        (model_dir / "marts" / f"vm_v{version}.sql").write_text(
            f"{{{{ config(materialized='table') }}}}\nselect id, val from {{{{ ref('{versioned_parent}') }}}}\n",
            encoding="utf-8",
        )

    def tagged() -> list[str]:
        return [t for t in TAGS if rng.random() < 0.3]

    def with_tags(test: str, indent: str) -> str:
        """A data test entry, with a random `config: tags:` block (its lines at `indent`)."""
        tags = tagged()
        if not tags:
            return test
        name, colon, rest = test.partition(":")
        block = f"\n{indent}config:\n{indent}  tags: {tags!r}"
        return f"{name}:{block}{rest}" if colon else f"{name}:{block}"

    # tests: not_null on most models, relationships on some, unit tests on single-parent models
    by_name = {m.name: m for m in models}
    source_tags = tagged()
    # the source is DuckDB's own catalog: it exists before the build, whatever order dbt runs nodes in
    yml = ["version: 2", "sources:", "  - name: raw", "    database: system", "    schema: information_schema"]
    yml += [f"    tags: {source_tags!r}"] if source_tags else []
    yml += ["    tables:", "      - name: tables", "        columns:", "          - name: table_name"]
    yml += ["            data_tests: [not_null]", "models:"]
    unit = ["unit_tests:"]
    for model in models:
        if model.materialized == "ephemeral":
            continue
        tests = ["not_null"] if rng.random() < 0.8 else []
        parent = model.parents[0]
        if rng.random() < 0.3 and parent not in seeds and "." not in parent:
            tests.append(f"relationships:\n              arguments:\n                to: ref('{parent}')\n"
                         "                field: id")  # fmt: skip
        if tests:
            yml += [f"  - name: {model.name}", "    columns:", "      - name: id", "        data_tests:"]
            yml += [f"          - {with_tags(t, ' ' * 14)}" for t in tests]
        parents_ok = all(p in seeds or ("." not in p and by_name[p].materialized != "ephemeral") for p in model.parents)
        if rng.random() < 0.5 and parents_ok:
            unit += [f"  - name: ut_{model.name}", f"    model: {model.name}"]
            unit_tags = tagged()
            unit += ["    config:", f"      tags: {unit_tags!r}"] if unit_tags else []
            unit += ["    given:"]
            for p in dict.fromkeys(model.parents):
                source = f"ref('{p}')" if p in seeds else f"ref('gen', '{p}')"
                unit += [f"      - input: {source}", "        rows:", "          - {id: 1, val: a}"]
            if model.materialized == "incremental":
                unit += ["    overrides:", "      macros:", "        is_incremental: false"]
            unit += ["    expect:", "      rows:"]
            unit += ["        - {id: 1, val: a}" for _ in model.parents]
    yml += [
        "  - name: vm",
        "    latest_version: 2",
        "    columns:",
        "      - name: id",
        "        data_tests: [not_null]",
        "    versions:",
        "      - v: 1",
        "      - v: 2",
    ]
    if len(unit) > 1:
        yml += unit
    (model_dir / "schema.yml").write_text("\n".join(yml) + "\n", encoding="utf-8")

    # singular tests
    (root / "tests").mkdir()
    for model in rng.sample([m for m in models if m.materialized != "ephemeral"], k=2):
        (root / "tests" / f"assert_{model.name}.sql").write_text(
            f"select * from {{{{ ref('{model.name}') }}}} where id is null\n", encoding="utf-8"
        )

    # a snapshot of a seed
    (root / "snapshots").mkdir()
    (root / "snapshots" / "snaps.yml").write_text(
        "snapshots:\n  - name: snap\n    relation: ref('seed_0')\n"
        "    config:\n      unique_key: id\n      strategy: check\n      check_cols: all\n",
        encoding="utf-8",
    )

    # a local package whose model m_0 shares its name with the root project's
    package = root / "packages" / "genpkg"
    (package / "models").mkdir(parents=True)
    (package / "dbt_project.yml").write_text(
        'name: genpkg\nversion: "1.0.0"\nconfig-version: 2\nmodel-paths: ["models"]\n'
        "models:\n  genpkg:\n    +materialized: table\n",
        encoding="utf-8",
    )
    (package / "models" / "m_0.sql").write_text(
        "{{ config(alias='genpkg_m_0') }}\nselect 1 as id, 'a' as val\n", encoding="utf-8"
    )
    (package / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: m_0\n    columns:\n      - name: id\n        data_tests: [not_null]\n",
        encoding="utf-8",
    )
    (root / "packages.yml").write_text("packages:\n  - local: packages/genpkg\n", encoding="utf-8")

    (root / "macros").mkdir()
    shutil.copy2(FAULT_MACROS, root / "macros" / "emulator_faults.sql")

    (root / "dbt_project.yml").write_text(
        'name: gen\nversion: "1.0.0"\nprofile: gen\nconfig-version: 2\n'
        "flags:\n  send_anonymous_usage_stats: false\n  require_ref_searches_node_package_before_root: true\n"
        'models:\n  +pre-hook: "{{ emulator_fault_hook() }}"\n'
        'seeds:\n  +pre-hook: "{{ emulator_fault_hook() }}"\n'
        'snapshots:\n  +pre-hook: "{{ emulator_fault_hook() }}"\n',
        encoding="utf-8",
    )

    excluded = rng.choice(models).name
    (root / "selectors.yml").write_text(
        "selectors:\n"
        "  - name: sel_staging\n    definition:\n      union:\n"
        "        - method: path\n          value: models/staging\n          children: true\n"
        f"        - exclude:\n            - method: fqn\n              value: {excluded}\n"
        "  - name: sel_tag\n    definition:\n      method: tag\n      value: t1\n      parents: true\n",
        encoding="utf-8",
    )
    folders = sorted({m.folder for m in models if m.folder})
    return GeneratedProject(seed, models, seeds, folders, ["sel_staging", "sel_tag"])


def random_command(rng: random.Random, project: GeneratedProject) -> str:
    """A step command with a random selection, exclusion, selector and indirect selection."""
    name = rng.choice(["build", "build", "build", "run", "run", "test", "seed", "snapshot"])
    parts = ["dbt", name]
    if name in ("seed", "snapshot"):
        if rng.random() < 0.3:
            parts += ["--select", rng.choice(project.seeds) if name == "seed" else "snap"]
        return " ".join(parts)
    model = rng.choice(project.models).name
    selections = [
        model,
        f"{model}+",
        f"+{model}",
        f"1+{model}+",
        "tag:t1",
        "tag:t2+",
        "staging",
        "marts",
        "gen.staging",
        "path:models/staging",
        "package:genpkg+",
        "m_0",
        "vm",
        "seed_0+",
        "resource_type:model",
        f"{model}+,tag:t1",
    ]
    roll = rng.random()
    if roll < 0.15:
        parts += ["--selector", rng.choice(project.selectors)]
    elif roll < 0.75:
        parts += ["--select", *rng.sample(selections, k=rng.choice([1, 1, 2]))]
    if rng.random() < 0.3:
        parts += ["--exclude", rng.choice([rng.choice(project.models).name, "tag:t2", "marts"])]
    if name in ("build", "test") and rng.random() < 0.4:
        parts += ["--indirect-selection", rng.choice(["cautious", "buildable", "empty", "eager"])]
    if rng.random() < 0.15:
        parts += ["--fail-fast"]
    if rng.random() < 0.2:
        parts += ["--vars", '\'{"x": "a b"}\'']
    return " ".join(parts)


def make_legacy(root: Path) -> None:
    """Rewrite a generated project for dbt before 1.8 (`make compat`'s dbt 1.7).

    No `flags:` in dbt_project.yml, `tests:` for `data_tests:`, no unit tests, a SQL snapshot
    instead of a YAML one (1.9+), and generic test arguments without the `arguments:` key (1.10+).
    """
    project = root / "dbt_project.yml"
    text = project.read_text(encoding="utf-8")
    project.write_text(re.sub(r"flags:\n(?:  .*\n)+", "", text), encoding="utf-8")
    for path in root.rglob("*.yml"):
        text = path.read_text(encoding="utf-8").replace("data_tests:", "tests:")
        text = re.sub(r"\n( +)arguments:\n\1  to: (.*)\n\1  field: (.*)", r"\n\1to: \2\n\1field: \3", text)
        path.write_text(text.split("\nunit_tests:\n")[0].rstrip("\n") + "\n", encoding="utf-8")
    (root / "snapshots" / "snaps.yml").unlink()
    (root / "snapshots" / "snap.sql").write_text(
        "{% snapshot snap %}\n"
        "{{ config(unique_key='id', strategy='check', check_cols='all', target_schema=target.schema) }}\n"
        "select * from {{ ref('seed_0') }}\n{% endsnapshot %}\n",
        encoding="utf-8",
    )
