"""Where SQL may be written: only repositories, models and the database core build statements, so that every
query passes through a repository whose base scopes it to the tenant."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "trooply"
SQL_HOMES = ("db.py", "repository.py", "models.py")
# sqlalchemy's statement and expression builders: importing any of them outside a SQL home means a query there.
STATEMENT_BUILDERS = frozenset({
    "select", "insert", "update", "delete", "func", "text", "literal_column", "literal", "and_", "or_", "not_",
    "exists", "case", "cast", "union", "union_all", "bindparam", "column", "table", "tuple_", "desc", "asc",
    "distinct", "true", "false", "null", "over", "within_group", "lateral", "values",
})


def _sql_imports(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found += [f"from {node.module} import {alias.name}" for alias in node.names
                      if alias.name in STATEMENT_BUILDERS or alias.name == "*"]
        elif isinstance(node, ast.Import):
            # `import sqlalchemy` reaches every builder as an attribute; the submodules without builders are fine.
            found += [f"import {alias.name}" for alias in node.names
                      if alias.name in ("sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression")]
    return found


def _modules_outside_sql_homes() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py")
                  if path.name not in SQL_HOMES and "migrations" not in path.relative_to(PACKAGE).parts)


def test_the_scan_covers_the_domains():
    scanned = {path.relative_to(PACKAGE).as_posix() for path in _modules_outside_sql_homes()}
    assert {"ranking/rules.py", "feedback/service.py", "catalog/service.py", "tenancy/usage.py"} <= scanned


def test_the_check_recognises_a_query_builder():
    tree = ast.parse("from sqlalchemy import CursorResult, select\nfrom sqlalchemy.orm import Session\n"
                     "import sqlalchemy\nfrom sqlalchemy.exc import IntegrityError\n")
    assert _sql_imports(tree) == ["from sqlalchemy import select", "import sqlalchemy"]


@pytest.mark.parametrize("path", _modules_outside_sql_homes(), ids=lambda path: path.relative_to(PACKAGE).as_posix())
def test_only_repositories_build_sql(path: Path):
    offending = _sql_imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    assert not offending, (f"{path.relative_to(PACKAGE)} builds SQL ({'; '.join(offending)}): "
                           "move the query into the domain's repository.py")
