"""``ffcvx info --stats [--plot PNG] [--json]``: print or draw a file's statistics.

``info.py`` prints the layout; this module adds the statistics of
:func:`ffcvx.dataset_stats.dataset_stats` as text or JSON, and the figure.
"""
import json

from .common import UsageError, human

__all__ = ['add_stats_options', 'wants_stats', 'run_stats']

#: Width in characters of the longest bar of a label histogram.
BAR_WIDTH = 40


def add_stats_options(parser):
    """Add ``--stats``, ``--label-field``, ``--plot`` and ``--json`` to ``ffcvx info``'s parser."""
    group = parser.add_argument_group('statistics (from the metadata and allocation table; '
                                      'nothing is decoded)')
    group.add_argument('--stats', action='store_true',
                       help="also print label histograms, image sizes and storage modes, stored "
                            "bytes per field and mode, and page use")
    group.add_argument('--label-field', action='append', metavar='NAME', default=None,
                       help="IntField to histogram (repeatable; default: every IntField; "
                            "implies --stats)")
    group.add_argument('--plot', metavar='PNG', default=None,
                       help="draw the statistics into this PNG (implies --stats; needs "
                            "matplotlib: pip install 'ffcvx[plot]')")
    group.add_argument('--json', action='store_true',
                       help="print the statistics as one JSON object instead of text "
                            "(implies --stats)")


def wants_stats(args):
    """Whether ``args`` asks for statistics (``--stats``, ``--plot``, ``--json``,
    ``--label-field``)."""
    return bool(args.stats or args.plot or args.json or args.label_field)


def _percent(share):
    return f"{100 * share:.1f}%"


def _pages_text(stats):
    pages, per_page = stats['pages'], stats['samples_per_page']
    return [f"page use:          {pages['written']} written, {pages['holding_data']} holding data, "
            f"mean fill {_percent(pages['mean_fill'])} (lowest {_percent(pages['lowest_fill'])})",
            f"samples per page:  mean {per_page['mean']:.1f}, min {per_page['min']}, "
            f"max {per_page['max']} (over the pages holding data)"]


def _bytes_text(stats):
    fields, region = stats['fields'], stats['data_region']
    if not fields:
        return ["stored bytes:      no field stores data in pages"]
    width = max(len(name) for name in (*fields, '(unused)')) + 2
    out = ["stored bytes:"]
    for name, field in fields.items():
        out.append(f"  {name:<{width}}{human(field['stored_bytes']):>10}  "
                   f"{_percent(field['share']):>6} of the data region, "
                   f"{field['samples_with_data']} samples with data")
        for mode, info in stats['images'].get(name, {}).get('modes', {}).items():
            out.append(f"    {mode:<{width - 2}}{human(info['bytes']):>10}  "
                       f"{info['count']} images, mean {human(round(info['mean_bytes']))}")
    unused = region['bytes'] - stats['pages']['used_bytes']
    if region['bytes']:
        out.append(f"  {'(unused)':<{width}}{human(unused):>10}  "
                   f"{_percent(unused / region['bytes']):>6} of the data region")
    return out


def _labels_text(name, histogram):
    others = histogram['others']
    out = [f"labels '{name}':  {histogram['distinct']} distinct values"]
    rows = [(str(value), count) for value, count in histogram['counts']]
    if others['values']:
        rows.append((f"{others['values']} others", others['count']))
    if not rows:
        return out + ["  no samples"]
    # bars compare the values shown; the others, a sum of many values, get none
    high = max(count for _, count in histogram['counts'])
    total = sum(count for _, count in rows)
    key_width = max(len(key) for key, _ in rows)
    count_width = len(str(max(count for _, count in rows)))
    for k, (key, count) in enumerate(rows):
        bar = '#' * round(BAR_WIDTH * count / high) if k < len(histogram['counts']) else ''
        out.append(f"  {key:>{key_width}}  {count:>{count_width}}  {_percent(count / total):>6}  "
                   f"{bar}".rstrip())
    return out


def _images_text(name, images):
    out = [f"images '{name}':"]
    for axis in ('width', 'height'):
        spread = images[axis]
        out.append(f"  {axis:<7}" + ('no images' if spread is None else
                                     ', '.join(f"{key} {value}" for key, value in spread.items())
                                     + ' px'))
    if images['common_sizes']:
        out.append(f"  sizes   {images['distinct_sizes']} distinct; most common " + ', '.join(
            f"{w}x{h} ({count})" for w, h, count in images['common_sizes']))
    return out


def stats_text(stats):
    """The lines ``ffcvx info --stats`` prints after the layout."""
    out = ["", "statistics (from the metadata and allocation table):"]
    out += _pages_text(stats) + _bytes_text(stats)
    for name, histogram in stats['labels'].items():
        out += _labels_text(name, histogram)
    for name, images in stats['images'].items():
        out += _images_text(name, images)
    return out


def _label_panel(axes, stats):
    if not stats['labels']:
        axes.text(0.5, 0.5, 'no IntField', ha='center', va='center', transform=axes.transAxes)
        axes.set_axis_off()
        return
    name, histogram = next(iter(stats['labels'].items()))
    keys = [str(value) for value, _ in histogram['counts']]
    counts = [count for _, count in histogram['counts']]
    others = histogram['others']
    axes.bar(range(len(keys)), counts, color='tab:blue')
    axes.set_xticks(range(len(keys)), keys, rotation=90 if len(keys) > 12 else 0)
    # the others are named, not drawn: their sum would flatten the bars shown
    axes.set_title(f"labels '{name}' ({histogram['distinct']} distinct)" + (
        f"\n{others['values']} others not shown: {others['count']} samples"
        if others['values'] else ''))
    axes.set_xlabel('value')
    axes.set_ylabel('samples')


def _size_panel(axes, reader, stats):
    from ..dataset_stats import size_counts
    if not stats['images']:
        axes.text(0.5, 0.5, 'no image field', ha='center', va='center', transform=axes.transAxes)
        axes.set_axis_off()
        return
    name = next(iter(stats['images']))
    pairs, counts = size_counts(reader.metadata[f'f{reader.field_names.index(name)}'])
    # One marker per distinct size, its area by how many images have it: cheap for any count.
    area = 20 + 400 * counts / max(int(counts.max()), 1) if counts.size else counts
    points = axes.scatter(pairs[:, 0], pairs[:, 1], s=area, c=counts, cmap='viridis', alpha=0.7)
    axes.figure.colorbar(points, ax=axes, label='images')
    axes.set_title(f"image sizes '{name}'")
    axes.set_xlabel('width (px)')
    axes.set_ylabel('height (px)')


def _bytes_panel(axes, stats):
    names, values = [], []
    for name, field in stats['fields'].items():
        modes = stats['images'].get(name, {}).get('modes', {})
        if len(modes) > 1:
            names += [f"{name} {mode}" for mode in modes]
            values += [info['bytes'] for info in modes.values()]
        else:
            names.append(name + (f" {next(iter(modes))}" if modes else ''))
            values.append(field['stored_bytes'])
    region = stats['data_region']['bytes']
    if region:
        names.append('(unused)')
        values.append(region - stats['pages']['used_bytes'])
    colours = ['tab:orange'] * len(values)
    if region:
        colours[-1] = 'tab:gray'
    axes.barh(range(len(names)), [value / 2 ** 20 for value in values], color=colours)
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set_xlabel('MiB stored')
    written = stats['pages']['written']
    axes.set_title(f"stored bytes ({written} page{'s' if written != 1 else ''} of "
                   f"{human(stats['page_size'])})")


def plot_stats(reader, stats, path):
    """Draw the label histogram, image sizes and stored bytes into the PNG ``path``.

    Returns
    -------
    (width, height) : tuple of int
        The PNG's size in pixels.

    Raises
    ------
    MissingExtraError
        If matplotlib is not installed.
    """
    from ..plotting import image_size, pyplot, save_figure
    plt = pyplot('ffcvx info --plot')
    figure, panels = plt.subplots(1, 3, figsize=(16, 4.5))
    _label_panel(panels[0], stats)
    _size_panel(panels[1], reader, stats)
    _bytes_panel(panels[2], stats)
    figure.tight_layout()
    save_figure(figure, path)
    return image_size(path)


def run_stats(reader, args, layout_lines):
    """Print ``layout_lines`` and the statistics (text or ``--json``); draw ``--plot``."""
    import sys

    from ..dataset_stats import dataset_stats
    try:
        stats = dataset_stats(reader, label_fields=args.label_field)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"--label-field: {exc.args[0]}") from None
    # Drawn first: without matplotlib the command fails before printing anything.
    size = plot_stats(reader, stats, args.plot) if args.plot else None
    if args.json:
        print(json.dumps({'file': args.file, 'file_size': reader.file_size, **stats}, indent=1))
    else:
        print('\n'.join(layout_lines + stats_text(stats)))
    if size:
        # stdout carries only the JSON object under --json
        print(f"wrote {args.plot} ({size[0]} x {size[1]} px)",
              file=sys.stderr if args.json else sys.stdout)
    return 0
