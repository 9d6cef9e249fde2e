#!/usr/bin/env python3
"""The layers of the tree, held by the compiler (docs/architecture.md).

usage: layering.py BUILD_DIR SOURCE_DIR

1. For every target that compiles a part of the tree (each layer of the
   library, the pattern layer, the CLI, each benchmark program, each
   example), a probe file is compiled with the exact command CMake made for
   one of that target's sources (BUILD_DIR/compile_commands.json), the source
   swapped for the probe: a private header of a layer the part may not see
   must fail to compile, with the compiler saying it found no such file; one
   of a layer it may see, and <ipcx.h> (but in the benchmark's peer
   programs, which never see ipcx), must compile.  A private header
   named without its layer ("tran.h") compiles nowhere.
2. Every private header compiles on its own in its layer (includes what it
   uses).
3. Includes read as the rules say: none climbs out of its folder ("../"),
   which would get past the include folders; inside the library every
   private header is named with its layer ("core/url.h"), and only of a
   layer the part may see; the pattern layer includes nothing private but
   its own folder's headers; IPCX_EXPORT is defined by the build alone.
"""
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

build, src = sys.argv[1], sys.argv[2]

# The parts of the tree and the layers whose private headers each may include.
LIBRARY = ['core', 'shm', 'sync', 'inspect']  # the layers that have headers
SEES = {
    'src/core': ['core'],
    'src/shm': ['core', 'shm'],
    'src/sync': ['core', 'sync'],
    'src/notify': ['core', 'sync'],
    'src/transport': ['core', 'shm'],
    'src/inspect': ['core', 'shm', 'inspect'],
    'src/pattern': [],
    'tools/ipcx': [],
    'bench': [],
    'examples': [],
}
# The header a probe takes from each layer.
PROBE = {'core': 'core/tran.h', 'shm': 'shm/ring.h', 'sync': 'sync/sem.h',
         'inspect': 'inspect/inspect.h'}

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL ' + msg)


def part_of(path):
    rel = os.path.relpath(path, src)
    for part in sorted(SEES, key=len, reverse=True):
        if rel.startswith(part + '/'):
            return part
    return None


def probe_command(entry, probe, obj):
    """The entry's compile command with its source and output swapped."""
    argv = shlex.split(entry['command'])
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a in ('-o', '-MF', '-MT', '-MQ'):
            skip = True
            if a == '-o':
                out += ['-o', obj]
            continue
        if a in ('-MD', '-MMD'):
            continue
        if os.path.abspath(os.path.join(entry['directory'], a)) == os.path.abspath(entry['file']):
            out.append(probe)
            continue
        out.append(a)
    return out


def compile_probe(entry, include, tmp):
    probe = os.path.join(tmp, 'probe.c')
    with open(probe, 'w') as f:
        f.write('#include %s\ntypedef int ipcx_layering_probe;\n' % include)
    r = subprocess.run(probe_command(entry, probe, os.path.join(tmp, 'probe.o')),
                       cwd=entry['directory'], capture_output=True, text=True)
    return r.returncode == 0, r.stderr


def expect(entry, include, ok_wanted, tmp, what):
    ok, err = compile_probe(entry, include, tmp)
    name = include.strip('<>"')
    if ok_wanted and not ok:
        fail('%s: %s should compile:\n%s' % (what, include, err.strip()))
    elif not ok_wanted and ok:
        fail('%s: %s compiled, but %s may not see it' % (what, include, what))
    elif not ok_wanted and ('%s: No such file or directory' % name not in err and
                            "'%s' file not found" % name not in err):
        fail('%s: %s failed for another reason than not being found:\n%s'
             % (what, include, err.strip()))
    return 1


def targets():
    """One compile command per target, with the part of the tree it builds."""
    with open(os.path.join(build, 'compile_commands.json')) as f:
        entries = json.load(f)
    seen = {}
    for e in entries:
        part = part_of(e['file'])
        # tests and fuzz targets are white-box: they compile library files too
        if part is None or os.path.basename(e['directory']) in ('tests', 'fuzz'):
            continue
        m = re.search(r'-o\s+(\S*?CMakeFiles/[^/]+\.dir)/', e['command'])
        target = m.group(1) if m else e['file']
        seen.setdefault((part, target), e)
    return seen


def check_compiles(tmp):
    found = targets()
    for part in SEES:
        if not any(p == part for p, _ in found):
            fail('%s: no compile command in compile_commands.json' % part)
    n = 0
    for (part, target), e in sorted(found.items()):
        what = '%s (%s)' % (part, os.path.basename(target).replace('.dir', ''))
        # The command compiles a probe at all; the public header wherever it
        # is used (the benchmark's peer programs never see ipcx).
        n += expect(e, '<stddef.h>', True, tmp, what)
        if part != 'bench':
            n += expect(e, '<ipcx.h>', True, tmp, what)
        for layer in LIBRARY:
            n += expect(e, '"%s"' % PROBE[layer], layer in SEES[part], tmp, what)
        n += expect(e, '"tran.h"', False, tmp, what)
        n += expect(e, '"ring.h"', False, tmp, what)
    # Every header on its own, in a target of its layer.
    for layer in LIBRARY:
        entry = next(e for (p, _), e in sorted(found.items()) if p == 'src/' + layer)
        for h in sorted(glob.glob(os.path.join(src, 'src', layer, '*.h'))):
            n += expect(entry, '"%s/%s"' % (layer, os.path.basename(h)), True, tmp,
                        'src/' + layer)
    return n


INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def check_includes():
    n = 0
    for d in ['src', 'tools', 'bench', 'examples', 'tests', 'fuzz', 'include']:
        for path in sorted(glob.glob(os.path.join(src, d, '**', '*.[ch]'), recursive=True)):
            rel = os.path.relpath(path, src)
            text = open(path, errors='replace').read()
            if re.search(r'^\s*#\s*define\s+IPCX_EXPORT\b', text, re.M):
                fail('%s: defines IPCX_EXPORT (the build does)' % rel)
            part = part_of(path)
            for inc in INCLUDE.findall(text):
                n += 1
                if inc.startswith('../') or '/../' in inc or inc.startswith('./'):
                    fail('%s: #include "%s" climbs out of its folder' % (rel, inc))
                if part is None or not part.startswith('src/'):
                    continue
                if part == 'src/pattern':
                    if '/' in inc:
                        fail('%s: #include "%s": the pattern layer sees <ipcx.h> '
                             'and its own folder only' % (rel, inc))
                    continue
                layer = inc.split('/')[0] if '/' in inc else None
                if inc == 'ipcx.h':
                    continue
                if layer is None:
                    fail('%s: #include "%s": name a private header with its layer '
                         '("%s/%s")' % (rel, inc, part.split('/')[1], inc))
                elif layer not in SEES[part]:
                    fail('%s: #include "%s": %s does not see %s' % (rel, inc, part, layer))
    return n


with tempfile.TemporaryDirectory(prefix='ipcxt-%s-layering-' % os.environ.get(
        'IPCX_TEST_TAG', 'none')) as tmp:
    compiles = check_compiles(tmp)
includes = check_includes()
print('%d probes compiled, %d includes read, %d failures' % (compiles, includes, len(failures)))
sys.exit(1 if failures else 0)
