#!/usr/bin/env python3
"""Writes docs/API.md, the C API reference, from include/stload.h (system python3, no packages).

Usage: scripts/gen-api-docs.py [--check | --list-functions] [HEADER]
  (no option)       regenerate docs/API.md
  --check           exit 1 when docs/API.md differs from what the header gives
  --list-functions  print the declared function names, one a line (for the symbol test)

The header is cbindgen's output, so its shape is regular: a doc comment opening with "/*" at
column 0, then the item it documents. Functions are grouped by family, the word after
"stload_"; a family not in FAMILIES gets a section of its own, so new functions need no edit here.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "API.md"

# Family word -> section title, in the order the sections appear.
FAMILIES = {
    "open": "Models",
    "model": "Models",
    "tensor": "Tensors",
    "convert": "Conversion",
    "dtype": "Dtypes",
    "options": "Options",
    "error": "Errors",
    "version": "Version",
}


def doc_text(lines):
    """The text of a C comment's lines, without the delimiters and the common indent."""
    body = [l.replace("/*", "").replace("*/", "").rstrip() for l in lines]
    body = [l for l in body if l.strip()]
    indent = min((len(l) - len(l.lstrip()) for l in body), default=0)
    return "\n".join(l[indent:] for l in body)


def complete(decl):
    """Whether declaration lines end the declaration: with ";" outside braces."""
    text = "\n".join(decl)
    return text.endswith(";") and text.count("{") == text.count("}")


def items(header):
    """Yields (doc, declaration lines) for each top-level item: a doc comment documents the
    item right below it."""
    lines = header.splitlines()
    i, doc = 0, None
    while i < len(lines):
        line = lines[i]
        if line.startswith("/*"):
            end = i
            while "*/" not in lines[end]:
                end += 1
            doc, i = doc_text(lines[i : end + 1]), end + 1
            continue
        if line.startswith("#define") and len(line.split()) >= 3:
            yield doc, [line]
        elif line.startswith("typedef") or re.search(r"\bstload_\w+\(", line):
            decl = [line]
            while not complete(decl):
                i += 1
                decl.append(lines[i])
            yield doc, decl
        # Consecutive #defines share the comment above the first (the version triple).
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not (line.startswith("#define") and following.startswith("#define")):
            doc = None
        i += 1


def members(decl):
    """(name, doc) of each documented member of an enum or struct body."""
    out, doc = [], []
    for line in decl[1:-1]:
        s = line.strip()
        if s.startswith("/*") or doc and not doc[-1].strip().endswith("*/"):
            doc.append(line)
        elif s:
            name = re.sub(r"\s*=.*|;$|,$", "", s).split()[-1].lstrip("*")
            out.append((name, " ".join(doc_text(doc).split())))
            doc = []
    return out


def parse(header):
    types, constants, functions = [], [], []
    for doc, decl in items(header):
        first = decl[0]
        if first.startswith("#define"):
            _, name, value = first.split(None, 2)
            constants.append((name, value, " ".join((doc or "").split())))
        elif first.startswith("typedef"):
            # A function pointer type names itself in "(*name)"; any other type last.
            fnptr = re.search(r"\(\*(\w+)\)", first)
            name = fnptr.group(1) if fnptr else re.search(r"(\w+);$", decl[-1]).group(1)
            types.append((name, doc or "", decl))
        else:
            name = re.search(r"(stload_\w+)\(", first).group(1)
            functions.append((name, doc or "", "\n".join(decl)))
    return types, constants, functions


def cell(text):
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|")


def family(name):
    word = name[len("stload_") :].split("_")[0]
    return FAMILIES.get(word, word.capitalize())


def render(header):
    types, constants, functions = parse(header)
    banner = header.split("*/", 1)[0].splitlines()[1:]
    # The banner's "Conventions" list, with "*" escaped so markdown keeps pointers and globs.
    conventions = [l[3:].replace("*", "\\*") for l in banner if l.startswith(" * ")]
    conventions = conventions[conventions.index("Conventions") + 1 :]
    order = list(dict.fromkeys(FAMILIES.values()))
    groups = {}
    for f in functions:
        groups.setdefault(family(f[0]), []).append(f)
    titles = [t for t in order if t in groups] + sorted(t for t in groups if t not in order)

    md = ["# stload C API reference", ""]
    md += ["Generated from `include/stload.h` by `scripts/gen-api-docs.py`; do not edit by hand.",
           "Regenerate after changing the header: `python3 scripts/gen-api-docs.py`.", ""]
    md += ["## Conventions", ""] + conventions + [""]
    md += ["Functions: " + ", ".join(f"[{t}](#{t.lower()})" for t in titles) + ".", ""]
    md += ["## Types", ""]
    for name, doc, decl in types:
        md += [f"### `{name}`", "", doc, ""]
        rows = members(decl) if "{" in decl[0] else []
        if rows:
            md += ["| member | meaning |", "| --- | --- |"]
            md += [f"| `{m}` | {cell(d)} |" for m, d in rows] + [""]
    md += ["## Constants", "", "| name | value | meaning |", "| --- | --- | --- |"]
    md += [f"| `{n}` | `{v}` | {cell(d)} |" for n, v, d in constants] + [""]
    for title in titles:
        md += [f"## {title}", ""]
        for name, doc, sig in groups[title]:
            md += [f"### `{name}`", "", "```c", sig, "```", "", doc, ""]
    return "\n".join(md).rstrip() + "\n"


def main(argv):
    flags = [a for a in argv if a.startswith("--")]
    paths = [a for a in argv if not a.startswith("--")]
    header = Path(paths[0] if paths else ROOT / "include" / "stload.h").read_text()
    if "--list-functions" in flags:
        print("\n".join(name for name, _, _ in parse(header)[2]))
        return 0
    text = render(header)
    if "--check" in flags:
        if not OUT.exists() or OUT.read_text() != text:
            print("docs/API.md is stale: run `python3 scripts/gen-api-docs.py` and commit it",
                  file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
