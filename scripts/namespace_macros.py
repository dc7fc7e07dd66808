"""Calls between the engine's dbt macros go through the package: `medallion.x()`, never `x()`.

dbt resolves a bare macro name in the package of the node it renders, then the root project:
where medallion is a package of your own dbt project (medallion dbt-setup), a bare call from one
of its macros to another is undefined. This rewrites bare calls in medallion/dbt/macros (Jinja
code only: not comments, not strings, not a macro's own name) and, with --check, lists them
and exits 1 instead (tests/test_dbt_package.py). After merging macro changes: run it.

    python scripts/namespace_macros.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MACROS = Path(__file__).resolve().parents[1] / "medallion" / "dbt" / "macros"
SPANS = re.compile(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", re.S)
STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def _called_names(files: list[Path]) -> set[str]:
    """The engine's macros a bare call could mean (dispatch targets and dbt's own excepted)."""
    names = {m.group(1) for f in files for m in re.finditer(r"\{%-?\s*macro\s+([a-z_0-9]+)", f.read_text())}
    return {n for n in names if not n.startswith(("default__", "postgres__", "spark__")) and n != "generate_schema_name"}


def rewrite(text: str, bare: re.Pattern[str]) -> str:
    def code(span: re.Match[str]) -> str:
        s = span.group(0)
        if s.startswith("{#"):
            return s
        head = re.match(r"\{%-?\s*macro\s+[a-z_0-9]+\(", s)
        start = head.end() if head else 0
        body, parts, last = s[start:], [], 0
        for quoted in STRINGS.finditer(body):
            parts += [bare.sub(r"medallion.\1(", body[last:quoted.start()]), quoted.group(0)]
            last = quoted.end()
        parts.append(bare.sub(r"medallion.\1(", body[last:]))
        return s[:start] + "".join(parts)

    return SPANS.sub(code, text)


def main(check: bool) -> int:
    files = sorted(MACROS.rglob("*.sql"))
    names = _called_names(files)
    bare = re.compile(r"(?<![\w.])(" + "|".join(sorted(names, key=len, reverse=True)) + r")\(")
    changed = []
    for f in files:
        text = f.read_text()
        new = rewrite(text, bare)
        if new != text:
            changed.append(f)
            if not check:
                f.write_text(new)
    for f in changed:
        print(f"{f.relative_to(MACROS.parents[2])}: bare calls between medallion's macros"
              + ("" if not check else " (run scripts/namespace_macros.py)"))
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
