"""``ffcvx clean PATH...``: remove the temporary files that killed writes left behind."""
import os

from .common import UsageError, human

__all__ = ['add_parser', 'run']


def run(args):
    """Remove the temporary files that killed writers left for each target (or folder).

    A PATH that does not exist is fine while some writer's temporary file of
    it does (a first write was killed). One with neither, a typo or a wrong
    folder, is reported on stderr and makes the exit status 2, after the
    other paths were cleaned (as ``rm`` does), so that a script does not
    take "nothing found" for "cleaned".
    """
    from ..writer import temp
    removed = kept = 0
    missing = []
    for target in args.paths:
        if not os.path.lexists(target) and not temp.temps_of(target):
            missing.append(target)
            continue
        stale = set(temp.stale_temps(target))
        for path, parsed in temp.temps_of(target):
            if path not in stale:
                kept += 1
                print(f"kept {path} (its writer, pid {parsed.pid}, is running, ran on another "
                      f"host, or belongs to another user)")
                continue
            try:
                size = os.path.getsize(path)
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                kept += 1
                print(f"kept {path}: cannot remove it ({exc})")
                continue
            removed += 1
            print(f"removed {path} ({human(size)})")
    print(f"{removed} stale temporary file(s) removed, {kept} of running writers kept")
    if missing:
        raise UsageError("; ".join(
            f"{target}: no such file or folder, and no temporary file of a write to it"
            for target in missing))
    return 0


def add_parser(commands):
    """Add ``clean`` to the sub-command parsers ``commands``."""
    clean = commands.add_parser(
        'clean', help="remove temporary files that killed writes left behind",
        description="Remove the hidden temporary files (.NAME.ffcvx-*.tmp) that writers of "
                    "each target left when they were killed (SIGKILL, power loss). A file of a "
                    "writer that is still running (same pid and process start time), or one "
                    "made on another host, is kept. The targets themselves are never touched.")
    clean.add_argument('paths', nargs='+', metavar='PATH',
                       help="a .beton path (need not exist while a temporary file of a write to "
                            "it does) or a folder (every target in it); a PATH with neither "
                            "is an error (exit status 2)")
    clean.set_defaults(run=run)
