"""spec/failures.md: every section cites tests, and every cited test exists."""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / 'spec' / 'failures.md'
CITATION = re.compile(r'`((?:tests|backends)/[\w/]+\.py)::(\w+)`')


def _sections():
    """``{heading: text}`` of the ``## `` sections."""
    parts = re.split(r'^## ', DOC.read_text(), flags=re.M)[1:]
    return {part.splitlines()[0]: part for part in parts}


def _test_names(path):
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith('test_')}


def test_every_section_has_a_table_and_cites_tests():
    sections = _sections()
    assert len(sections) >= 4
    for heading, text in sections.items():
        rows = [line for line in text.splitlines()
                if line.startswith('|') and not line.startswith('|---')]
        assert len(rows) >= 2, f"section {heading!r} has no failure rows"
        assert all(line.count('|') == 5 for line in rows), \
            f"section {heading!r}: every row needs failure, sees, kept, cleaned"
        assert CITATION.search(text), f"section {heading!r} cites no test"


def test_every_cited_test_exists():
    cited = CITATION.findall(DOC.read_text())
    assert len(cited) >= 20
    missing = []
    for file, name in cited:
        path = REPO / file
        if not path.is_file() or name not in _test_names(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"spec/failures.md cites tests that do not exist: {missing}"


def test_readme_and_developers_link_the_table():
    for doc in ('README.md', 'DEVELOPERS.md'):
        assert 'spec/failures.md' in (REPO / doc).read_text(), doc
