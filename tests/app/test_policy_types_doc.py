"""``docs/policy-types.md`` is generated from the catalog and committed up to date: one row per type with its
route, capture, restore capability (or backup-only reason) and permissions."""

from __future__ import annotations

from dataclasses import replace

from scripts import generate_policy_types_doc as gen
from shared.graph.catalog import CATALOG


def _rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_the_committed_table_is_what_the_catalog_generates() -> None:
    committed = gen.DOC_FILE.read_text(encoding="utf-8")

    assert committed == gen.render(), "run .venv/bin/python -m scripts.generate_policy_types_doc"
    assert gen.main(["--check"]) == 0


def test_every_type_has_a_row_with_its_route_restore_capability_and_permissions() -> None:
    rows = _rows(gen.render())

    assert sorted(rows) == sorted(CATALOG)
    for key, policy_type in CATALOG.items():
        _, name, route, capture, restore, read, write = rows[key]
        assert name == policy_type.display_name
        assert route.startswith(f"`{policy_type.list_url()}")
        assert capture
        assert read == f"`{policy_type.read_permission}`"
        assert write == f"`{policy_type.write_permission}`"
        if policy_type.backup_only is not None:
            assert restore == f"**backup-only**: {policy_type.backup_only}"
        else:
            assert "backup-only**" not in restore
            assert ("no assignments" in restore) == (policy_type.assignments is None)
    assert "(all pages, count checked)" in rows["settingsCatalog"][3]
    assert "secrets kept as null: `token`" in rows["vppToken"][3]


def test_a_catalog_change_makes_the_committed_table_stale() -> None:
    changed = dict(CATALOG)
    changed["deviceCategory"] = replace(CATALOG["deviceCategory"], backup_only="no longer written back")

    text = gen.render(changed)

    assert text != gen.render()
    assert _rows(text)["deviceCategory"][4] == "**backup-only**: no longer written back"
