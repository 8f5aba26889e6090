#!/usr/bin/env python3
"""The layer check: the modules of each crate form layers, with no circle.

For every crate below, reads the module tree (`mod x;` declarations), finds
which modules of the same crate each module refers to (`use crate::..`,
`super::..`, `self::..`, a child module's name, and the same paths written
out in code), then fails (exit 1) on

  * a circle: modules that, following those references, reach each other;
  * an upward import: a module referring to a module of a higher layer
    (LAYERS below; modules it does not list are only checked for circles).

Test code (`mod tests { .. }`, anything under `#[cfg(test)]`) may refer to
anything and is left out. A reference to the crate root (`crate::X` where `X`
is no module file of the crate: an item of lib.rs, or another crate that the
root re-exports, such as `crate::model::..`) is ignored: the root declares and
re-exports everything.

It reads the text, it does not compile it: cheap (well under a second) and
good enough for the code this workspace writes (see "Limits" at the end).

    python3 scripts/layers.py              # the check
    python3 scripts/layers.py --verbose    # and every reference found
    python3 scripts/layers.py --self-test  # the check of the check
"""

import argparse
import bisect
import re
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# The crates checked: directory (relative to the repository root), crate root.
CRATES = [
    ("crates/model", "src/lib.rs"),
    ("crates/aws", "src/lib.rs"),
    ("crates/embedded", "src/lib.rs"),
    ("crates/lambda", "src/lib.rs"),
    ("crates/testkit", "src/lib.rs"),
    ("crates/twilio-sim", "src/lib.rs"),
    ("shared", "src/lib.rs"),
    (".", "src/main.rs"),
]

# The declared layers, per crate directory: a module path prefix ("calls"
# covers `calls` and `calls::status`; the longest listed prefix wins) and its
# layer. A module may refer to modules of its own or a lower layer, never of a
# higher one. Prefixes naming no module are ignored; the crate root is exempt.
LAYERS = {
    "shared": {
        "paths": 0, "telemetry": 0,
        "twilio": 1,
        "config": 2,
        "auth": 3, "api": 3,
        "accounts": 4, "app": 4,
        "webhook": 5, "views": 5,
        "calls": 6, "numbers": 6, "onboarding": 6, "recordings": 6,
        "sms": 6, "token": 6, "events": 6,
        "routes": 7, "openapi": 7,
    },
    "crates/model": {
        "ids": 0, "phone": 0, "time": 0, "sealed": 0,
        "recordings": 1, "workspace": 1, "jobs": 1,
        "calls": 2, "messages": 2,
        "changes": 3,
        "ports": 4,
        "conformance": 5,
    },
}

REPO = Path(__file__).resolve().parent.parent

Module = tuple[str, ...]  # a module path within its crate; () is the root


# --- Text: comments and literals out, positions kept ------------------------

# Where a comment or a literal may start: the text between is copied as is.
# A raw string (r"..", br#".."#) must not be preceded by an identifier
# character (`for"` is no raw string); a quote may be a lifetime ('a).
LITERAL_START = re.compile(r'//|/\*|(?<!\w)[bc]?r(#*)"|"|\'')
BLOCK_COMMENT_TOKEN = re.compile(r"/\*|\*/")
STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.S)  # up to the closing quote
CHAR_LITERAL = re.compile(r"'(?:\\.[^'\n]*|[^\\'\n])'")  # 'x', '\n', '\u{..}', '"'
NOT_NEWLINE = re.compile(r"[^\n]")


def blank(text: str) -> str:
    """Spaces for every character but newlines: lines stay where they were."""
    return NOT_NEWLINE.sub(" ", text)


def strip_code(text: str) -> str:
    """The text with comments and the insides of string and char literals
    blanked (newlines kept): same length, so positions and lines still match
    the file, and nothing written in prose or in a string counts as a path."""
    pieces, copied, i, n = [], 0, 0, len(text)
    while True:
        m = LITERAL_START.search(text, i)
        if not m:
            break
        start, token = m.start(), m.group()
        keep = start  # a literal's delimiters stay; its inside goes
        if token == "//":  # also /// and //!
            end = text.find("\n", start)
            end = resume = n if end < 0 else end
        elif token == "/*":  # block comments nest in Rust
            depth, end = 1, m.end()
            while depth:
                t = BLOCK_COMMENT_TOKEN.search(text, end)
                if not t:
                    end = n
                    break
                depth += 1 if t.group() == "/*" else -1
                end = t.end()
            resume = end
        elif token.endswith('"') and len(token) > 1:  # a raw string: no escapes
            keep = m.end()
            close = '"' + m.group(1)
            end = text.find(close, keep)
            end = n if end < 0 else end
            resume = end + len(close)
        elif token == '"':  # "..", b"..", c"..": the prefix does not matter
            keep = m.end()
            end = STRING_BODY.match(text, keep).end()
            resume = end + 1
        else:  # a quote: a char literal, or a lifetime left alone
            c = CHAR_LITERAL.match(text, start)
            if not c:
                i = m.end()
                continue
            keep, end, resume = start + 1, c.end() - 1, c.end()
        pieces += [text[copied:keep], blank(text[keep:end])]
        copied, i = end, resume
    pieces.append(text[copied:])
    return "".join(pieces)


def blank_spans(code: str, spans) -> str:
    """`code` with each (start, end) span blanked, newlines kept."""
    pieces, copied = [], 0
    for start, end in sorted(spans):
        start = max(start, copied)
        if end > start:
            pieces += [code[copied:start], blank(code[start:end])]
            copied = end
    pieces.append(code[copied:])
    return "".join(pieces)


def block_end(code: str, open_brace: int) -> int:
    """The position just past the `}` matching the `{` at open_brace."""
    depth = 0
    for k in range(open_brace, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(code)


def bracket_end(code: str, open_bracket: int) -> int:
    """The position just past the `]` matching the `[` at open_bracket."""
    depth = 0
    for k in range(open_bracket, len(code)):
        if code[k] == "[":
            depth += 1
        elif code[k] == "]":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(code)


# --- Test code: what `#[cfg(test)]` and `mod tests` cover --------------------

ATTRIBUTE = re.compile(r"#\s*(!?)\s*\[")
CFG = re.compile(r"\[\s*cfg\s*\((.*)\)\s*\]$", re.S)
NEXT_ATTRIBUTE = re.compile(r"\s*#\s*\[")
TESTS_MODULE = re.compile(r"\bmod\s+tests\s*\{")
# `pub(in crate::x)` restricts visibility: it refers to no code.
VISIBILITY_PATH = re.compile(r"\bpub\s*\(\s*in\s+[^)]*\)")


def requires_test(predicate: str) -> bool:
    """Whether a cfg predicate holds only when compiling tests: `test`,
    `all(test, ..)`; not `any(test, feature = "test-support")`, whose code
    is built for other crates too and so is held to the layers."""
    tokens = re.findall(r"\w+|[(),=]", predicate)

    def parse(i):
        name = tokens[i]
        i += 1
        if i < len(tokens) and tokens[i] == "(":
            args, i = [], i + 1
            while tokens[i] != ")":
                arg, i = parse(i)
                args.append(arg)
                if tokens[i] == ",":
                    i += 1
            return (name, args), i + 1
        if i < len(tokens) and tokens[i] == "=":  # key = "value" (blanked)
            return ("key", name), i + 1
        return ("name", name), i

    def holds_only_in_tests(node):
        kind, arg = node
        if kind == "name":
            return arg == "test"
        if kind == "all":
            return any(holds_only_in_tests(a) for a in arg)
        if kind == "any":
            return bool(arg) and all(holds_only_in_tests(a) for a in arg)
        return False  # not(..), key = "value"

    try:
        node, _ = parse(0)
        return holds_only_in_tests(node)
    except (IndexError, ValueError):
        return False  # unreadable: treat as built, so it is checked


def item_end(code: str, start: int) -> int:
    """The end of the item (or statement) starting at `start`, past any
    further attributes: its `;` or its body's closing `}`."""
    k = start
    while True:  # further attributes of the same item
        m = NEXT_ATTRIBUTE.match(code, k)
        if not m:
            break
        k = bracket_end(code, m.end() - 1)
    depth = 0
    for j in range(k, len(code)):
        c = code[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:  # the end of the enclosing block: a field, an arm
                return j
            if depth == 0 and c == "}":
                return j + 1
        elif c == ";" and depth == 0:
            return j + 1
    return len(code)


def test_spans(code: str) -> list[tuple[int, int]]:
    """The spans of test-only code: items under a cfg that requires `test`
    (the whole file for a top-level `#![cfg(test)]`), and `mod tests {..}`."""
    spans = []
    for m in ATTRIBUTE.finditer(code):
        end = bracket_end(code, m.end() - 1)
        cfg = CFG.match(code[m.end() - 1:end])
        if not cfg or not requires_test(cfg.group(1)):
            continue
        if m.group(1):  # inner attribute: its enclosing block, here the file
            if code.count("{", 0, m.start()) == code.count("}", 0, m.start()):
                return [(0, len(code))]
            continue
        spans.append((m.start(), item_end(code, end)))
    for m in TESTS_MODULE.finditer(code):
        spans.append((m.start(), block_end(code, m.end() - 1)))
    return spans


# --- One file ------------------------------------------------------------------

INLINE_MODULE = re.compile(r"\bmod\s+(\w+)\s*\{")
MOD_DECLARATION = re.compile(r"\bmod\s+(\w+)\s*;")
# The attributes (and visibility) right before a `mod x;`: is one #[path]?
ATTRIBUTES_BEFORE = re.compile(r"(?:#\s*\[[^\]]*\]\s*)+(?:pub\s*(?:\([^)]*\))?\s*)?$")
PATH_ATTRIBUTE = re.compile(r"#\s*\[\s*path\s*=")


@dataclass
class Source:
    """One file of the module tree, read and cleaned."""

    file: Path
    module: Module
    code: str  # comments, literals and test code blanked
    line_starts: list[int]
    inline: list[tuple[Module, int, int]]  # inline modules: path, span

    def scope_at(self, pos: int) -> Module:
        """The module a position is in: this file's, or an inline one's."""
        scope = self.module
        for path, start, end in self.inline:  # outer ones come first
            if start < pos < end:
                scope = path
        return scope

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos)


def read_source(file: Path, module: Module) -> Source:
    text = file.read_text(encoding="utf-8", errors="replace")
    code = VISIBILITY_PATH.sub(lambda m: " " * len(m.group()), strip_code(text))
    code = blank_spans(code, test_spans(code))
    line_starts = [0] + [m.end() for m in re.finditer("\n", code)]
    source = Source(file, module, code, line_starts, [])
    for m in INLINE_MODULE.finditer(code):
        # An inline module inside another gets the outer one's path first.
        path = source.scope_at(m.start()) + (m.group(1),)
        source.inline.append((path, m.start(), block_end(code, m.end() - 1)))
    return source


def children_dir(file: Path) -> Path:
    """Where the files of the modules a file declares live: next to a crate
    root or a mod.rs, else in a folder named after the file."""
    if file.name in ("lib.rs", "main.rs", "mod.rs"):
        return file.parent
    return file.parent / file.stem


# --- One crate -----------------------------------------------------------------


@dataclass
class Crate:
    repo: Path
    directory: str  # relative to the repository root
    name: str
    root: Path
    sources: dict[Module, Source] = field(default_factory=dict)
    # Every module path, inline ones too, to the module file it is written in.
    modules: dict[Module, Module] = field(default_factory=dict)
    # (from, to) module files: what was written that refers across, and where.
    edges: dict[tuple[Module, Module], list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def rel(self, file: Path) -> str:
        try:
            return str(file.relative_to(self.repo))
        except ValueError:
            return str(file)


def load_crate(repo: Path, directory: str, entry: str) -> Crate | None:
    root = repo / directory / entry
    if not root.is_file():
        return None
    crate = Crate(repo, directory, package_name(repo / directory), root)
    discover(crate, root, ())
    for source in crate.sources.values():
        find_references(crate, source)
    return crate


def package_name(directory: Path) -> str:
    try:
        with open(directory / "Cargo.toml", "rb") as f:
            return tomllib.load(f)["package"]["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return directory.name


def discover(crate: Crate, file: Path, module: Module):
    """Reads a module file and, through its `mod x;` lines, its children."""
    source = read_source(file, module)
    crate.sources[module] = source
    crate.modules[module] = module
    for path, _, _ in source.inline:
        crate.modules[path] = module
    for m in MOD_DECLARATION.finditer(source.code):
        scope = source.scope_at(m.start())
        child = scope + (m.group(1),)
        attributes = ATTRIBUTES_BEFORE.search(source.code, max(0, m.start() - 300), m.start())
        if attributes and PATH_ATTRIBUTE.search(attributes.group()):
            crate.warnings.append(f"{crate.rel(file)}:{source.line_of(m.start())}: "
                                  f"#[path] is not followed: module {'::'.join(child)} not checked")
            continue
        # `mod a { mod b; }` puts b's file in a/: the inline part of the path.
        folder = children_dir(file).joinpath(*scope[len(module):])
        candidates = [folder / f"{child[-1]}.rs", folder / child[-1] / "mod.rs"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            crate.warnings.append(f"{crate.rel(file)}:{source.line_of(m.start())}: "
                                  f"module {'::'.join(child)} declared, but neither "
                                  f"{crate.rel(candidates[0])} nor {crate.rel(candidates[1])} exists")
            continue
        if len(found) > 1:
            crate.warnings.append(f"both {crate.rel(found[0])} and {crate.rel(found[1])} exist")
        if child not in crate.sources:
            discover(crate, found[0], child)


# --- References ----------------------------------------------------------------

USE = re.compile(r"(?<![\w$.])(?<!::)use(?=[\s{:])")
USE_TOKEN = re.compile(r"\$crate|[A-Za-z_]\w*|::|[{},*]")
# A path in code: two or more segments, not the tail of a longer path or a
# method call (`x.y::<T>()`).
CODE_PATH = re.compile(r"(?<![\w$.])(?<!::)(?:\$crate|[A-Za-z_]\w*)(?:\s*::\s*[A-Za-z_]\w*)+")


def use_statements(code: str):
    """(start, end, body) of every `use ..;` (end past the `;`)."""
    for m in USE.finditer(code):
        depth = 0
        for k in range(m.end(), len(code)):
            if code[k] == "{":
                depth += 1
            elif code[k] == "}":
                depth -= 1
            elif code[k] == ";" and depth == 0:
                yield m.start(), k + 1, code[m.end():k]
                break


def use_paths(body: str) -> list[tuple[list[str], str | None]]:
    """The paths a use tree names, each with the name it binds when that is a
    single name (`a::b` binds b, `a::b as c` binds c, `a::{self}` binds a;
    globs bind none): `crate::{a::{X, Y as Z}, c}` gives crate::a::X,
    crate::a::Y, crate::c. A leading `::` (another crate) stays as a segment."""
    tokens = USE_TOKEN.findall(body)
    paths = []

    def tree(i, prefix):
        path = list(prefix)
        if i < len(tokens) and tokens[i] == "::":
            path.append("::")
            i += 1
        while i < len(tokens):
            token = tokens[i]
            if token == "{":
                i += 1
                while i < len(tokens) and tokens[i] != "}":
                    after = tree(i, path)
                    i = after if after > i else i + 1  # never stall on odd text
                    if i < len(tokens) and tokens[i] == ",":
                        i += 1
                return i + 1
            if token == "*":
                paths.append((path + ["*"], None))
                return i + 1
            if token in (",", "}", "::"):
                break
            path.append(token)
            i += 1
            if i < len(tokens) and tokens[i] == "::":
                i += 1
                continue
            binds = path[-1] if path[-1] != "self" else (path[-2] if len(path) > 1 else None)
            if i + 1 < len(tokens) and tokens[i] == "as":
                binds = tokens[i + 1]
                i += 2
            paths.append((path, binds))
            return i
        if len(path) > len(prefix):
            paths.append((path, None))
        return i

    tree(0, [])
    return paths


def absolute(crate: Crate, scope: Module, segments: list[str], aliases: dict[str, Module]) -> Module | None:
    """The path from the crate root that a path written in `scope` spells,
    or None when it starts in another crate or at an item in scope."""
    segments = plain(segments)
    head = segments[0]
    if head in ("crate", "$crate"):
        return tuple(segments[1:])
    if head == "super":
        base, k = scope, 0
        while k < len(segments) and segments[k] == "super":
            if not base:
                return None
            base, k = base[:-1], k + 1
        return base + tuple(segments[k:])
    if head == "self":
        return scope + tuple(segments[1:])
    if scope + (head,) in crate.modules:  # a child module, by its name
        return scope + tuple(segments)
    if head in aliases:  # a module a `use` named: `use crate::twilio;`
        return aliases[head] + tuple(segments[1:])
    return None


def resolve(crate: Crate, scope: Module, segments: list[str], aliases: dict[str, Module]) -> Module | None:
    """The module file a path refers to, or None when it leaves the crate or
    names only the crate root. Walks down while segments name modules of this
    crate: `crate::x::y::Z` is module x::y if it exists, else x."""
    full = absolute(crate, scope, segments, aliases)
    if full is None:
        return None
    path: Module = ()
    for segment in full:
        if path + (segment,) not in crate.modules:
            break
        path += (segment,)
    if not path:
        return None  # the crate root: exempt (see the top of this file)
    return crate.modules[path]


def plain(segments: list[str], glob: bool = False) -> list[str]:
    """A use path as a path: `a::b::{self}` is a::b; a glob's `*` is kept
    only for showing."""
    return [s for k, s in enumerate(segments) if (s != "self" or k == 0) and (glob or s != "*")]


def find_references(crate: Crate, source: Source):
    """Adds the edges of one module file: its `use` trees, then the paths
    written out in code (with the `use` lines blanked, so none counts twice)."""
    uses = list(use_statements(source.code))
    aliases: dict[str, Module] = {}
    for start, _, body in uses:
        scope = source.scope_at(start)
        for segments, binds in use_paths(body):
            if not segments or segments[0] == "::":
                continue
            target = resolve(crate, scope, segments, aliases)
            if target is None:
                continue
            add_edge(crate, source, target, "::".join(plain(segments, glob=True)), start)
            # `use crate::twilio;` names a module: follow `twilio::rest::X` later.
            full = absolute(crate, scope, segments, aliases)
            if binds and full in crate.modules:
                aliases[binds] = full
    code = blank_spans(source.code, [(start, end) for start, end, _ in uses])
    for m in CODE_PATH.finditer(code):
        segments = [s.strip() for s in m.group().split("::")]
        target = resolve(crate, source.scope_at(m.start()), segments, aliases)
        if target is not None:
            add_edge(crate, source, target, "::".join(segments), m.start())


def add_edge(crate: Crate, source: Source, target: Module, name: str, pos: int):
    if target == source.module:
        return  # a module referring to itself
    where = f"{crate.rel(source.file)}:{source.line_of(pos)}"
    crate.edges.setdefault((source.module, target), []).append(f"{name} ({where})")


# --- The checks ------------------------------------------------------------------


def circles(crate: Crate) -> list[list[Module]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[Module, list[Module]] = {m: [] for m in crate.sources}
    for a, b in crate.edges:
        graph[a].append(b)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def shortest_cycle(crate: Crate, component: list[Module]) -> list[Module]:
    """One shortest round trip through the component's first module, to show."""
    members = set(component)
    start = component[0]
    previous = {start: None}
    queue = [start]
    for v in queue:
        for a, b in sorted(crate.edges):
            if a != v or b not in members:
                continue
            if b == start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if b not in previous:
                previous[b] = v
                queue.append(b)
    return component


def layer_of(layers: dict[str, int], module: Module) -> int | None:
    """The layer of the longest listed prefix of the module's path."""
    for k in range(len(module), 0, -1):
        layer = layers.get("::".join(module[:k]))
        if layer is not None:
            return layer
    return None


def upward_imports(crate: Crate, layers: dict[str, int]):
    """(from, its layer, to, its layer) for each edge to a higher layer."""
    found = []
    for a, b in sorted(crate.edges):
        la, lb = layer_of(layers, a), layer_of(layers, b)
        if a and la is not None and lb is not None and lb > la:
            found.append((a, la, b, lb))
    return found


def show(module: Module) -> str:
    return "::".join(module) or "crate"


def report(crates: list[Crate], layers_by_crate: dict, verbose: bool, out, err) -> tuple[int, int]:
    """Prints what the check found; the numbers of circles and upward imports."""
    n_circles = n_upward = 0
    for crate in crates:
        for warning in crate.warnings:
            print(f"layers: warning: {warning}", file=err)
        label = f"{crate.name} ({crate.directory})"
        if verbose:
            print(f"{label}: {len(crate.sources)} modules, {len(crate.edges)} imports", file=out)
            for (a, b), names in sorted(crate.edges.items()):
                print(f"  {show(a)} -> {show(b)}: {', '.join(names)}", file=out)
        for component in circles(crate):
            n_circles += 1
            members = set(component)
            print(f"circle in {label}: {' -> '.join(map(show, shortest_cycle(crate, component)))}", file=out)
            for module in component:
                print(f"  {show(module)}: {crate.rel(crate.sources[module].file)}", file=out)
            for (a, b), names in sorted(crate.edges.items()):
                if a in members and b in members:
                    print(f"  {show(a)} -> {show(b)} because of: {', '.join(names)}", file=out)
        for a, la, b, lb in upward_imports(crate, layers_by_crate.get(crate.directory, {})):
            n_upward += 1
            names = ", ".join(crate.edges[(a, b)])
            print(f"upward import in {label}: {show(a)} (layer {la}) -> {show(b)} (layer {lb}): {names}",
                  file=out)
    return n_circles, n_upward


def check(repo: Path, crate_list, layers_by_crate, verbose: bool, out=sys.stdout, err=sys.stderr) -> int:
    """Runs the check over the crates; the exit code (1 on any problem)."""
    started = time.monotonic()
    crates = []
    for directory, entry in crate_list:
        crate = load_crate(repo, directory, entry)
        if crate is None:
            print(f"layers: warning: {directory}/{entry} does not exist: crate skipped", file=err)
        else:
            crates.append(crate)
    n_circles, n_upward = report(crates, layers_by_crate, verbose, out, err)
    modules = sum(len(c.sources) for c in crates)
    imports = sum(len(c.edges) for c in crates)
    verdict = (f"{'no' if not n_circles else n_circles} circle{'s' if n_circles > 1 else ''}, "
               f"{'no' if not n_upward else n_upward} upward import{'s' if n_upward > 1 else ''}")
    print(f"layers: {len(crates)} crates, {modules} modules, {imports} imports, {verdict} "
          f"({time.monotonic() - started:.2f} s)", file=out)
    return 1 if n_circles or n_upward else 0


# --- The self-test -----------------------------------------------------------------

SELF_TEST_FILES = {
    "src/lib.rs": """
        //! The root: declares, re-exports another crate (not a module here).
        pub use other_crate as model;
        pub mod a;
        pub mod b;
        pub mod c;
        pub mod d;
        #[cfg(any(test, feature = "test-support"))]
        pub mod e;
        #[cfg(test)]
        mod t;
        #[path = "elsewhere.rs"]
        mod moved;
        pub mod gone;
    """,
    "src/a.rs": """
        use crate::b::X; // the circle's first half
        use crate::model::calls::Call; // another crate, through the root
        // A comment naming crate::c::Z does not count, /* nor crate::c::Z */
        /// nor a doc comment: crate::c::Z
        pub fn f<'a>(s: &'a str) -> (char, &'a str) {
            let _ = r#"crate::c::Z "quoted" "#;
            ('"', "crate::c::Z and \\" crate::c::Z")
        }
    """,
    "src/b.rs": """
        use super::a::Y; // the circle's second half
        pub mod nested;
        #[cfg(test)]
        mod tests {
            use crate::c::*;
        }
    """,
    "src/b/nested.rs": "use crate::d::W as V;\n",
    "src/c/mod.rs": "pub mod inner;\npub use inner::Thing;\n",
    "src/c/inner.rs": "pub struct Thing;\npub fn g() { crate::a::helper(); }\n",
    "src/d.rs": """
        use crate::{a::{X, Y}, c};
        mod private {
            use super::super::e::R;
        }
    """,
    "src/e.rs": """
        use crate::a::*;
        #[cfg(all(test, unix))]
        use crate::c::Thing;
        #[cfg(test)]
        #[allow(dead_code)]
        fn helper() -> crate::c::Thing { crate::c::Thing }
    """,
    "src/t.rs": "use crate::c::Everything;\n",
}

SELF_TEST_EDGES = {
    ("a", "b"), ("b", "a"), ("b::nested", "d"), ("c", "c::inner"), ("c::inner", "a"),
    ("d", "a"), ("d", "c"), ("d", "e"), ("e", "a"),
}


def expect(ok: bool, what):
    """An assert that `python3 -O` does not drop."""
    if not ok:
        raise SystemExit(f"layers: self-test failed: {what}")


def self_test() -> int:
    import io
    import textwrap

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        for name, text in SELF_TEST_FILES.items():
            path = repo / "fake" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        crate = load_crate(repo, "fake", "src/lib.rs")
        edges = {(show(a), show(b)) for a, b in crate.edges}
        expect(edges == SELF_TEST_EDGES, f"edges: missing {sorted(SELF_TEST_EDGES - edges)}, "
                                         f"extra {sorted(edges - SELF_TEST_EDGES)}")
        expect(("t",) not in crate.sources, "a #[cfg(test)] module file was read")
        warnings = [w.split(": ", 1)[1][:18] for w in crate.warnings]
        expect(warnings == ["#[path] is not fol", "module gone declar"], crate.warnings)
        found = [[show(m) for m in c] for c in circles(crate)]
        expect(found == [["a", "b"]], f"circles: {found}")
        expect(crate.edges[("a",), ("b",)] == ["crate::b::X (fake/src/a.rs:2)"], crate.edges[("a",), ("b",)])
        expect(crate.edges[("b",), ("a",)] == ["super::a::Y (fake/src/b.rs:2)"], crate.edges[("b",), ("a",)])
        layers = {"a": 0, "b": 0, "c": 1, "d": 2, "e": 1, "missing": 3}
        upward = [(show(a), show(b)) for a, _, b, _ in upward_imports(crate, layers)]
        expect(upward == [("b::nested", "d")], f"upward imports: {upward}")

        out = io.StringIO()
        expect(check(repo, [("fake", "src/lib.rs")], {"fake": layers}, False, out, out) == 1, out.getvalue())
        expect("circle in fake (fake): a -> b -> a" in out.getvalue(), out.getvalue())
        expect("1 circle, 1 upward import" in out.getvalue(), out.getvalue())
        # Without the circle and with layers that hold, the check passes.
        (repo / "fake/src/b.rs").write_text("pub mod nested;\n")
        out = io.StringIO()
        expect(check(repo, [("fake", "src/lib.rs")], {"fake": {"a": 9, "b": 0}}, False, out, out) == 0,
               out.getvalue())
        expect("no circle, no upward import" in out.getvalue(), out.getvalue())

    paths = use_paths(" a::{b::{self, C as D}, *}")
    expect(paths == [(["a", "b", "self"], "b"), (["a", "b", "C"], "D"), (["a", "*"], None)], paths)
    expect(use_paths(" ::e::F") == [(["::", "e", "F"], "F")], use_paths(" ::e::F"))
    expect(requires_test("test") and requires_test("all(test, unix)"), "cfg(test), cfg(all(test, ..))")
    expect(not requires_test('any(test, feature = "x")') and not requires_test("not(test)"), "cfg(any(test, ..))")
    print("layers: self-test passed")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="print every import found")
    parser.add_argument("--self-test", action="store_true", help="check the checker on a made-up crate")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return check(REPO, CRATES, LAYERS, args.verbose)


if __name__ == "__main__":
    sys.exit(main())

# Limits (it reads text; it does not run rustc's name resolution):
# * A `mod x;` line is no reference: a parent depends on a child only where
#   its code names it (`pub use jobs::NoQueue;`, `store::Store`).
# * Names brought in by `use` are followed only when they name a module
#   (`use crate::twilio; twilio::rest::X`), and for the whole file, not only
#   the block the `use` is in. An item re-exported by a module (`pub use
#   store::*` in ports/mod.rs) counts as a reference to the module that
#   re-exports it, not to the one that defines it.
# * Macros are read as text: a path inside macro_rules! counts for the module
#   that defines the macro, not where it expands; paths a macro builds
#   (concat!, paste!) are not seen; a `#[path = ".."]` module and `include!`d
#   files are not followed (a warning says so for #[path]).
# * `#[cfg(test)]` on a struct field or a match arm also leaves out the rest
#   of the enclosing braces: rare, and it can only hide a reference.
