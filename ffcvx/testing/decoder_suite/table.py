"""The table ``ffcvx conformance`` prints: one row per check, then the counts."""
__all__ = ['format_table']


def format_table(results, verbose=False):
    """The result table the CLI prints: check, result, clauses and reason.

    Parameters
    ----------
    results : list of ~ffcvx.testing.decoder_suite.report.CheckResult
    verbose : bool
        Also print the summary of passed checks (skips and failures always
        show their reason).

    Returns
    -------
    str
    """
    rows = [('check', 'result', 'clauses', 'reason / detail')]
    for r in results:
        detail = r.detail if (r.status != 'pass' or verbose) else ''
        rows.append((r.name, r.status, r.clauses, detail))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ['  '.join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + '  ' + row[3]
             for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths) + '  ' + '-' * 15)
    counts = {s: sum(r.status == s for r in results) for s in ('pass', 'fail', 'skip')}
    lines.append(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return '\n'.join(line.rstrip() for line in lines)

