"Issue 20 item 6: the modules of `cmer` import each other without a circle (every import counts, also one inside a function)."
import ast
from pathlib import Path
import cmer

PKG = Path(cmer.__file__).resolve().parent


def imports_of(path: Path) -> set[str]:
    "The `cmer` modules that module file `path` imports anywhere in it (top level or inside a function)."
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('cmer.')}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1 or mod == 'cmer' or mod.startswith('cmer.'):
                base = mod.split('.')[-1] if node.level == 1 or mod.startswith('cmer.') else ''
                if base and base != 'cmer': found.add(base)
                else: found |= {a.name for a in node.names}           # `from . import x` / `from cmer import x`
    return found


def module_graph() -> dict[str, set[str]]:
    mods = {p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    return {m: (imports_of(PKG/f'{m}.py') & mods) - {m} for m in sorted(mods)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    "One cycle through each strongly connected component of more than one module (Tarjan), as a path a -> b -> ... -> a."
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in sorted(graph[v]):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: comps.append(sorted(comp))
    for v in graph:
        if v not in index: visit(v)
    out = []
    for comp in comps:                                   # a shortest way back to the start inside the component
        start, prev, todo = comp[0], {comp[0]: None}, [comp[0]]
        while todo:
            v = todo.pop(0)
            for w in sorted(graph[v] & set(comp)):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None: path.append(prev[path[-1]])
                    out.append(path[::-1] + [start]); todo = []; break
                if w not in prev: prev[w] = v; todo.append(w)
    return out


def test_the_walker_finds_a_circle():
    g = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert cycles(g) == [['a', 'b', 'c', 'a']]
    assert cycles({'a': {'b'}, 'b': set()}) == []
    src = "from .core import x\nimport cmer.media\nfrom cmer import demo\nfrom . import train\ndef f():\n    from cmer.corpus import y\n"
    p = PKG.parent/'.test_layout_probe.py'
    try:
        p.write_text(src); assert imports_of(p) == {'core', 'media', 'demo', 'train', 'corpus'}
    finally: p.unlink()


def test_no_import_circle():
    graph = module_graph()
    assert {'core', 'chain', 'predict', 'corpus'} <= set(graph)
    found = cycles(graph)
    assert not found, 'import circles: ' + '; '.join(' -> '.join(c) for c in found)
