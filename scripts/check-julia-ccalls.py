#!/usr/bin/env python3
"""Checks every `ccall` of the Julia binding against the C header, without Julia.

    python3 scripts/check-julia-ccalls.py [--header include/panns.h] [JULIA_FILES_OR_DIRS...]

(default: include/panns.h and bindings/julia/src). For each `ccall(sym(:name), Ret, (T1, ...),
args...)` (or `ccall((:name, lib), ...)`) it checks that `name` is declared in the header,
that the return type and every argument type map to the C types (e.g. `size_t` -> `Csize_t`,
`const float *` -> `Ptr{Float32}`, `struct PannsIndex *` -> `Ptr{Cvoid}`,
`const struct PannsBuildOptions *` -> `Ptr{BuildOptions}`, `char **` -> `Ptr{Ptr{UInt8}}`),
that as many arguments as types are passed, and that the Julia mirrors of the C structs
(`BuildOptions`, `SearchStats`, `CFilter`, `CLabelFilter`) have the C fields in order with matching types. It also
checks that every called name is listed in the module's `FUNCTIONS` tuple (resolved at load
time) and that every listed name exists. Prints one line per problem and a summary; exits 1
on any problem. bindings/julia/test.sh runs it (and feeds it a broken copy, which must fail).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

SCALARS = {
    "void": {"Cvoid"},
    "PannsStatus": {"UInt32", "Cuint"},
    "uint32_t": {"UInt32", "Cuint"},
    "int32_t": {"Int32", "Cint"},
    "int": {"Cint", "Int32"},
    "uint64_t": {"UInt64", "Culonglong"},
    "int64_t": {"Int64", "Clonglong"},
    "size_t": {"Csize_t", "UInt"},
    "float": {"Float32", "Cfloat"},
    "double": {"Float64", "Cdouble"},
    "uint8_t": {"UInt8", "Cuchar"},
    "char": {"UInt8", "Cchar", "Int8"},
    # C function pointer types: passed and stored as Ptr{Cvoid} (e.g. from @cfunction).
    "PannsFilterFn": {"Ptr{Cvoid}"},
    "PannsLabelFilterFn": {"Ptr{Cvoid}"},
}
# C structs mirrored in Julia (layout checked below) and opaque handles (only behind pointers).
MIRRORS = {"PannsBuildOptions": "BuildOptions", "PannsSearchStats": "SearchStats", "PannsFilter": "CFilter",
           "PannsLabelFilter": "CLabelFilter"}
OPAQUE = {"PannsIndex", "PannsBuilder", "PannsLive", "PannsShardedIndex", "PannsAllowList"}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_header(path):
    text = strip_comments(pathlib.Path(path).read_text())
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    funcs = {}
    for m in re.finditer(r"([A-Za-z_][\w \t\*]*?)\b(panns_\w+)\s*\(([^;{}]*?)\)\s*;", text, re.S):
        ret, name, params = m.group(1), m.group(2), m.group(3)
        ret = " ".join(ret.replace("extern", " ").split())
        params = [" ".join(p.split()) for p in params.split(",")]
        if params == ["void"] or params == [""]:
            params = []
        types = []
        for p in params:
            # drop the parameter name: the last identifier not part of the type
            t = re.sub(r"\s*\b[A-Za-z_]\w*$", "", p) if re.search(r"[\s\*]\w+$", p) else p
            types.append(t.strip())
        funcs[name] = (ret, types)
    structs = {}
    for m in re.finditer(r"typedef struct (Panns\w+) \{(.*?)\} \1;", text, re.S):
        fields = []
        for f in m.group(2).split(";"):
            f = " ".join(f.split())
            if f:
                t, _, n = f.rpartition(" ")
                stars = len(n) - len(n.lstrip("*"))  # `const uint64_t *bits`: the star is the type's
                fields.append((n[stars:], t + " " + "*" * stars if stars else t))
        structs[m.group(1)] = fields
    return funcs, structs


def c_to_julia(ctype, is_param):
    """The Julia spellings that match a C type."""
    t = ctype.replace("const ", " ").replace("struct ", " ")
    stars = t.count("*")
    base = " ".join(t.replace("*", " ").split())
    if base in SCALARS:
        inner = set(SCALARS[base])
    elif base in MIRRORS:
        inner = {MIRRORS[base]}
    elif base in OPAQUE:
        if stars == 0:
            return set()
        inner = {"Cvoid"}
    else:
        return set()
    out = inner
    for level in range(stars):
        out = {f"Ptr{{{x}}}" for x in out}
        if level == 0 and base == "char":
            out |= {"Cstring"}
    if base == "char" and stars == 1 and is_param and "const" in ctype:
        out |= {"Ptr{Cvoid}"}  # a NULL-able string argument passed as C_NULL
    return out


def split_top(s):
    """Splits on commas outside (), {}, [] and strings."""
    parts, depth, cur, quote = [], 0, [], None
    for ch in s:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def find_ccalls(text):
    for m in re.finditer(r"\bccall\(", text):
        start = m.end()
        depth, i = 1, start
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        line = text.count("\n", 0, m.start()) + 1
        yield line, text[start:i - 1]


def norm(t):
    return re.sub(r"\s+", "", t)


def check_file(path, funcs, problems, used):
    text = pathlib.Path(path).read_text()
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # keeps line numbers
    text_nc = re.sub(r'"""[\s\S]*?"""', blank, text)      # drop docstrings
    text_nc = re.sub(r"#[^\n]*", blank, text_nc)             # and comments
    n = 0
    for line, body in find_ccalls(text_nc):
        n += 1
        where = f"{path}:{line}"
        parts = split_top(body)
        if len(parts) < 3:
            problems.append(f"{where}: cannot parse ccall({body[:60]}...)")
            continue
        m = re.fullmatch(r"sym\(:(\w+)\)|\(:(\w+),.*\)", parts[0].strip(), re.S)
        if not m:
            problems.append(f"{where}: cannot read the function name of {parts[0]!r}")
            continue
        name = m.group(1) or m.group(2)
        used.add((name, where))
        if name not in funcs:
            problems.append(f"{where}: {name} is not declared in the header")
            continue
        cret, cparams = funcs[name]
        jret = norm(parts[1])
        if jret not in c_to_julia(cret, False):
            problems.append(f"{where}: {name} returns {cret!r} in C, ccall says {jret}")
        tup = parts[2].strip()
        if not (tup.startswith("(") and tup.endswith(")")):
            problems.append(f"{where}: {name}: the argument types are not a tuple: {tup!r}")
            continue
        jtypes = [norm(t) for t in split_top(tup[1:-1])]
        args = parts[3:]
        if len(jtypes) != len(cparams):
            problems.append(f"{where}: {name} takes {len(cparams)} arguments in C, ccall declares {len(jtypes)}")
        if len(args) != len(jtypes):
            problems.append(f"{where}: {name}: {len(jtypes)} argument types but {len(args)} arguments passed")
        for k, (jt, ct) in enumerate(zip(jtypes, cparams)):
            if jt not in c_to_julia(ct, True):
                want = " or ".join(sorted(c_to_julia(ct, True))) or "?"
                problems.append(f"{where}: {name} argument {k + 1} is {ct!r} in C ({want}), ccall says {jt}")
    return n, text


def check_structs(texts, structs, problems):
    for cname, jname in MIRRORS.items():
        if cname not in structs:
            problems.append(f"header: struct {cname} not found")
            continue
        m = None
        for path, text in texts:
            m = re.search(rf"^\s*(?:mutable\s+)?struct\s+{jname}\b(.*?)^\s*end\b", text, re.S | re.M)
            if m:
                break
        if not m:
            problems.append(f"Julia: struct {jname} (mirror of {cname}) not found")
            continue
        fields = [(f.group(1), norm(f.group(2))) for f in re.finditer(r"^\s*(\w+)::([\w\{\}]+)", m.group(1), re.M)]
        cfields = structs[cname]
        if [f for f, _ in fields] != [f for f, _ in cfields]:
            problems.append(f"{path}: struct {jname} fields {[f for f, _ in fields]} != C {cname} {[f for f, _ in cfields]}")
        for (jf, jt), (cf, ct) in zip(fields, cfields):
            if jt not in c_to_julia(ct, False):
                problems.append(f"{path}: {jname}.{jf} is {jt}, C {cname}.{cf} is {ct!r}")


def main(argv):
    header = ROOT / "include" / "panns.h"
    paths = []
    i = 0
    while i < len(argv):
        if argv[i] == "--header":
            header = pathlib.Path(argv[i + 1])
            i += 2
        else:
            paths.append(pathlib.Path(argv[i]))
            i += 1
    if not paths:
        paths = [ROOT / "bindings" / "julia" / "src"]
    files = []
    for p in paths:
        files += sorted(p.rglob("*.jl")) if p.is_dir() else [p]
    funcs, structs = parse_header(header)
    problems, used, texts, n = [], set(), [], 0
    if len(funcs) < 20:
        problems.append(f"{header}: only {len(funcs)} functions parsed")
    for f in files:
        k, text = check_file(f, funcs, problems, used)
        n += k
        texts.append((f, text))
    check_structs(texts, structs, problems)
    listed = set()
    for _, text in texts:
        m = re.search(r"const FUNCTIONS = \((.*?)\n\)", text, re.S)
        if m:
            listed |= set(re.findall(r":(\w+)", m.group(1)))
    if listed:
        for name, where in sorted(used):
            if name not in listed:
                problems.append(f"{where}: {name} is called but not in FUNCTIONS (never resolved)")
        for name in sorted(listed - set(funcs)):
            problems.append(f"FUNCTIONS lists {name}, which the header does not declare")
    for p in problems:
        print(p)
    print(f"julia ccalls: {n} checked against {header.name} ({len(funcs)} C functions), "
          f"{len(problems)} problem(s)")
    if n == 0:
        print("no ccall found")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
