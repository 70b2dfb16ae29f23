"""The README's configuration table is generated from the declarations and up to date; every
declared parameter of every component is listed by ``persafl config --list``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from persafl_np.cli import main
from persafl_np.config import TABLES, describe

ROOT = Path(__file__).resolve().parent.parent


def _maker():
    spec = importlib.util.spec_from_file_location("make_config_table",
                                                  ROOT / "docs" / "make_config_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_table_is_up_to_date():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    i, j = _maker().table_block(text)
    assert text[i:j] == "\n" + describe(markdown=True), (
        "README.md's configuration table is stale; regenerate it with: "
        "python docs/make_config_table.py")


def test_every_declared_key_is_described():
    text = describe()
    for table, (sel, _default, comps) in TABLES.items():
        for name, entry in comps().items():
            head = "[" + ("arrivals." + table if table == "job_time" else table) + \
                f" {sel}={name}]"
            assert head in text, head
            block = text.split(head, 1)[1].split("\n[", 1)[0]
            for p in entry.params:
                assert f"  {p.name} ({p.kind}; {p.range_text()}; " in block, (table, name, p.name)


def test_config_command_lists_and_prints_markdown(capsys):
    assert main(["config", "--list"]) == 0
    out = capsys.readouterr().out
    assert out == describe()
    for key in ("hf_delta", "warm_start", "inner ", "reweight_prior", "job_trace", "sha256"):
        assert key in out, key
    assert main(["config", "--markdown"]) == 0
    assert capsys.readouterr().out == describe(markdown=True)
