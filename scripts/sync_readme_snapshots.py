#!/usr/bin/env python3
"""Copies the README's typed-wiring example and its compiler error from the UI case
tests/ui/wiring/readme.{rs,stderr}, and refreshes each `<!-- snapshot: path -->` block of
docs/*.md from the file it names. Run after `TRYBUILD=overwrite cargo test --test compiletest`;
`cargo test --test compiletest` checks that they agree."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
case = (root / "tests/ui/wiring/readme.rs").read_text()
program = case[case.index("use std::sync::Arc;"):]
error = (root / "tests/ui/wiring/readme.stderr").read_text().replace(
    "tests/ui/wiring/readme.rs", "src/main.rs")

readme_path = root / "README.md"
readme = readme_path.read_text()
blocks = list(re.finditer(r"```(rust|text)\n(.*?)```", readme, re.S))
rust = next(b for b in blocks if b.group(1) == "rust" and "use std::sync::Arc;" in b.group(2))
text = next(b for b in blocks if b.group(1) == "text" and "error[E0277]" in b.group(2))
for block, body in sorted([(rust, program), (text, error)], key=lambda p: -p[0].start()):
    readme = readme[:block.start(2)] + body + readme[block.end(2):]
readme_path.write_text(readme)

for doc in (root / "docs").glob("*.md"):
    src = doc.read_text()
    def refresh(m):
        body = (root / m.group(2)).read_text()
        return f"{m.group(1)}{body}```"
    new = re.sub(r"(<!-- snapshot: (\S+) -->\n```\w*\n)(.*?)```", refresh, src, flags=re.S)
    if new != src:
        doc.write_text(new)
        print(f"refreshed {doc.relative_to(root)}")
