"""Benchmarks of two revisions in one run: before/after figures for a redesign.

Usage: python scripts/bench_compare.py BASE [--rounds N] [-k EXPR] [BENCHMARK ...]

Checks BASE out into a temporary git worktree, builds its Cython extensions
there, and then runs the chosen benchmarks (default: RandomResizedCrop 224 +
flip on 1 and 2 threads, the memory strategies, the remote reads) for BASE and
for this checkout alternately, ``--rounds`` times each (default 2), so that
both see the same machine load. Each benchmark's figures (its ``extra_info``)
are taken at their best over the rounds (highest img/s, lowest seconds) and
printed side by side with the ratio this/BASE. Needs the project's venv.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ['benchmarks/test_loader_speed.py::test_random_resized_crop_224_flip',
           'benchmarks/test_strategy_speed.py', 'benchmarks/test_remote_speed.py']
BACKENDS = ['turbojpeg', 'pillow', 'imagecodecs', 'nvjpeg']


def build(tree):
    """Compile the core and the turbojpeg backend in place in ``tree``."""
    for where in (tree, tree / 'backends' / 'turbojpeg'):
        subprocess.run([sys.executable, 'setup.py', '-q', 'build_ext', '--inplace'], cwd=where,
                       check=True, stdout=subprocess.DEVNULL)


def run(tree, tests, extra, out):
    """One pytest run of ``tests`` against the code in ``tree``; returns {test: extra_info}."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tree)] + [str(tree / 'backends' / b) for b in BACKENDS]))
    subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--benchmark-only',
                    f'--benchmark-json={out}', *extra, *tests], cwd=tree, env=env, check=False)
    if not out.exists():
        return {}
    return {b['name']: b['extra_info'] for b in json.loads(out.read_text())['benchmarks']}


def best(values, key):
    """The best of several rounds: time and memory figures lowest, rates highest."""
    lower = any(word in key for word in ('_s', 'mib', 'seconds'))
    return min(values) if lower else max(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('base')
    parser.add_argument('tests', nargs='*', default=DEFAULT)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('-k', dest='keyword')
    args = parser.parse_intermixed_args()
    extra = ['-k', args.keyword] if args.keyword else []
    with tempfile.TemporaryDirectory(prefix='bench-base-') as tmp:
        base = Path(tmp) / 'tree'
        subprocess.run(['git', 'worktree', 'add', '-q', '--detach', str(base), args.base], cwd=REPO, check=True)
        try:
            build(base)
            figures = {'base': [], 'this': []}
            for i in range(args.rounds):
                for name, tree in (('base', base), ('this', REPO)):
                    print(f'round {i + 1}: {name}', flush=True)
                    figures[name].append(run(tree, args.tests, extra, Path(tmp) / f'{name}-{i}.json'))
        finally:
            subprocess.run(['git', 'worktree', 'remove', '--force', str(base)], cwd=REPO, check=False)
    print(f"\n{'benchmark / figure':70} {'base':>10} {'this':>10} {'this/base':>9}")
    for test in sorted(set().union(*figures['base'], *figures['this'])):
        keys = sorted({k for r in figures['base'] + figures['this'] for k, v in r.get(test, {}).items()
                       if isinstance(v, (int, float))})
        for key in keys:
            pair = [best([r[test][key] for r in figures[name] if key in r.get(test, {})] or [float('nan')], key)
                    for name in ('base', 'this')]
            ratio = pair[1] / pair[0] if pair[0] else float('nan')
            print(f'{(test + " " + key)[:70]:70} {pair[0]:>10.3f} {pair[1]:>10.3f} {ratio:>9.3f}')


if __name__ == '__main__':
    main()
