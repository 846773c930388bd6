#!/usr/bin/env python3
"""Checks kiln's layering (src/layers.txt): every file of src/ belongs to one layer, every include and every
symbol a layer's archive needs comes from that layer or one it may use, and the clients of the public API (the
CLI, the Python bindings) include only include/kiln/ and their own files.

Usage: check_layers.py SRC_DIR CLIENT_DIR[,CLIENT_DIR...]|- [LAYER=ARCHIVE ...]
Exit 0 when clean, 1 with one line per violation."""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SOURCE_SUFFIXES = (".cpp", ".h", ".cu", ".cuh")


def read_layers(path):
    """Returns [(layer, [folders], [uses])] in file order."""
    layers = []
    for line in open(path):
        if not re.match(r"^[a-z]", line):
            continue
        columns = [column.split() for column in line.split("|")]
        if len(columns) != 3 or len(columns[0]) != 1 or not columns[1] or not columns[2]:
            sys.exit(f"{path}: expected 'layer | folders... | uses... (or -)' in: {line.strip()}")
        uses = [] if columns[2] == ["-"] else columns[2]
        layers.append((columns[0][0], columns[1], uses))
    return layers


def closures(layers):
    """Each layer's allowed layers: itself and everything it uses, transitively."""
    allowed = {}
    for name, _, uses in layers:
        seen = {name}
        for used in uses:
            if used not in allowed:
                sys.exit(f"layers.txt: '{name}' uses '{used}', which is not listed above it")
            seen |= allowed[used]
        allowed[name] = seen
    return allowed


def owner_of(rel_path, folder_owner):
    return folder_owner.get(os.path.dirname(rel_path))


def check_includes(src, layers, allowed, problems):
    folder_owner = {folder: name for name, folders, _ in layers for folder in folders}
    for directory, _, files in os.walk(src):
        for file in sorted(files):
            if not file.endswith(SOURCE_SUFFIXES):
                continue
            rel = os.path.relpath(os.path.join(directory, file), src)
            layer = owner_of(rel, folder_owner)
            if layer is None:
                problems.append(f"src/{rel}: its folder is in no layer of layers.txt")
                continue
            for number, line in enumerate(open(os.path.join(src, rel), errors="replace"), 1):
                match = INCLUDE.match(line)
                if not match or not os.path.exists(os.path.join(src, match.group(1))):
                    continue  # public (kiln/...), same-folder or third-party headers
                target = owner_of(match.group(1), folder_owner)
                if target is not None and target not in allowed[layer]:
                    problems.append(f"src/{rel}:{number}: layer '{layer}' includes \"{match.group(1)}\" of layer "
                                    f"'{target}', which it may not use")


def check_client_includes(client, src, problems):
    """A client of the public API may include include/kiln/ headers and its own files only."""
    for file in sorted(os.listdir(client)):
        if not file.endswith(SOURCE_SUFFIXES):
            continue
        for number, line in enumerate(open(os.path.join(client, file), errors="replace"), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            header = match.group(1)
            if header.startswith("kiln/") or os.path.exists(os.path.join(client, header)):
                continue
            if os.path.exists(os.path.join(src, header)):
                where = os.path.join(os.path.basename(os.path.dirname(os.path.abspath(client))),
                                     os.path.basename(os.path.abspath(client)), file)
                problems.append(f"{where}:{number}: a client of the public API includes the internal header "
                                f"\"{header}\"; it may use include/kiln/ only")


def archive_symbols(archive):
    """(defined, undefined): symbol -> [member] for strong global definitions, and (member, symbol) pairs."""
    output = subprocess.run(["nm", "-P", "-A", archive], capture_output=True, text=True, check=True).stdout
    defined, undefined = {}, []
    for line in output.splitlines():
        head, _, rest = line.partition(": ")
        fields = rest.split()
        if len(fields) < 2:
            continue
        member = head[head.find("[") + 1:-1] if "[" in head else head
        symbol, kind = fields[0], fields[1]
        if kind == "U":
            undefined.append((member, symbol))
        elif kind in "TDBRG":  # strong global: weak (W, V) and inline definitions may appear in every layer
            defined.setdefault(symbol, []).append(member)
    return defined, undefined


def demangle(symbol):
    result = subprocess.run(["c++filt", symbol], capture_output=True, text=True)
    return result.stdout.strip() or symbol


def check_archives(archives, allowed, problems):
    tables = {layer: archive_symbols(path) for layer, path in archives.items()}
    definer = {}
    for layer, (defined, _) in tables.items():
        for symbol in defined:
            definer.setdefault(symbol, layer)
    for layer, (_, undefined) in tables.items():
        reported = set()
        for member, symbol in undefined:
            target = definer.get(symbol)
            if target is None or target in allowed[layer] or (member, target) in reported:
                continue
            reported.add((member, target))
            problems.append(f"kiln_{layer} ({member}) needs {demangle(symbol)} from kiln_{target}, a layer it may "
                            "not use")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    src, clients = argv[1], [] if argv[2] == "-" else argv[2].split(",")
    layers = read_layers(os.path.join(src, "layers.txt"))
    allowed = closures(layers)
    archives = {}
    for pair in argv[3:]:
        layer, _, path = pair.partition("=")
        if layer not in allowed:
            sys.exit(f"unknown layer '{layer}' (layers.txt lists {', '.join(allowed)})")
        archives[layer] = path
    problems = []
    check_includes(src, layers, allowed, problems)
    for client in clients:
        check_client_includes(client, src, problems)
    check_archives(archives, allowed, problems)
    for problem in problems:
        print(problem)
    print(f"layering: {len(layers)} layers, {len(archives)} archives checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
