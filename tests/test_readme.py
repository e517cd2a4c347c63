"""README's code runs, and CI runs README's test command (STYLE.md rule 7)."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_python_blocks_run(capsys: object) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "README should show the Python API"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    assert len(commands) == 2, "README shows exactly two commands: set-up/demo and tests"
    test_command = commands[1].strip()
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_demo_scenario_exists() -> None:
    demo = re.findall(r"```bash\n(.*?)\n```", README, re.S)[0]
    scenario = re.search(r"run (\S+\.yaml)", demo)
    assert scenario and (ROOT / scenario.group(1)).is_file()


def test_readme_sweep_and_capacity_commands_run(tmp_path: pathlib.Path) -> None:
    # The commands README shows, shortened (60 simulated s, 2 replications, in this process): they parse and
    # write what README says they write.
    import shlex

    from click.testing import CliRunner

    from cucm_sim.cli import main

    joined = README.replace("\\\n", " ")  # a command continued on the next line is one command
    shown = [line for line in joined.splitlines() if line.startswith(("cucm-sim sweep ", "cucm-sim capacity "))]
    assert [line.split()[1] for line in shown] == ["sweep", "capacity", "capacity"]
    expected = {"sweep": ["sweep.json", "runs.csv", "points.csv", "sweep.png"],
                "capacity": ["capacity.json", "probes.csv", "capacity.png"]}
    for number, line in enumerate(shown):
        words = shlex.split(line)[1:]
        out_dir = tmp_path / f"{words[0]}{number}"
        result = CliRunner().invoke(main, [*words, "--set", "duration_s=60", "--replications", "2", "--workers", "1",
                                           "--out", str(out_dir)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert sorted(path.name for path in out_dir.iterdir()) == sorted(expected[words[0]])


def test_the_layout_tour_names_every_folder_and_only_real_paths() -> None:
    tour = README[README.index("## Layout"):]
    if "\n## " in tour:
        tour = tour[:tour.index("\n## ")]
    folders = {path.name for path in (ROOT / "cucm_sim").iterdir() if (path / "__init__.py").exists()}
    listed = set(re.findall(r"^\| `(\w+)/` \|", tour, re.M))
    assert listed == folders
    for path in re.findall(r"`(cucm_sim/[\w/]+\.py)`", README):
        assert (ROOT / path).is_file(), path
