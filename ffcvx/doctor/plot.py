"""The doctor's figure: time per sample per stage (stacked bar) and img/s against workers."""
from ..plotting import pyplot

__all__ = ['plot', 'FIGURE_SIZE']

#: Width and height of the PNG, pixels (inches * dpi below).
FIGURE_SIZE = (1000, 400)
_DPI = 100


def plot(diagnosis, path):
    """Write ``diagnosis``'s figure to ``path`` (PNG), :data:`FIGURE_SIZE` pixels; returns ``path``.

    Raises
    ------
    MissingExtraError
        Without matplotlib (``pip install 'ffcvx[plot]'``).
    """
    plt = pyplot('ffcvx doctor --plot')
    figure, (stages, scaling) = plt.subplots(
        1, 2, figsize=(FIGURE_SIZE[0] / _DPI, FIGURE_SIZE[1] / _DPI), dpi=_DPI,
        gridspec_kw={'width_ratios': (1, 2)})
    bottom = 0.0
    colours = plt.get_cmap('tab10')
    for number, (name, seconds) in enumerate(diagnosis.stages.items()):
        stages.bar([0], [seconds * 1e3], bottom=[bottom], color=colours(number % 10), label=name)
        bottom += seconds * 1e3
    stages.set_xticks([])
    stages.set_ylim(0, max(bottom, 1e-6) * 1.7)       # room above the bar for the legend
    stages.set_ylabel('CPU ms per sample')
    stages.set_title('time per stage')
    stages.legend(fontsize='x-small', loc='upper center')
    workers = [int(w) for w in diagnosis.measured]
    scaling.plot(workers, list(diagnosis.measured.values()), 'o-', label='measured')
    predicted = sorted((int(w), rate) for w, rate in diagnosis.predicted.items())
    scaling.plot([w for w, _ in predicted], [r for _, r in predicted], 's--', label='model')
    storage = diagnosis.storage.get('img_per_s')
    if storage:
        scaling.axhline(storage, color='grey', linestyle=':', label='storage')
    top = max(list(diagnosis.measured.values()) + [r for _, r in predicted])
    if storage and storage < 2 * top:      # the storage line, when it is near enough to matter
        top = max(top, storage)
    scaling.set_ylim(0, top * 1.3)
    scaling.set_xticks(sorted(set(workers) | {w for w, _ in predicted}))
    scaling.set_xlabel('workers')
    scaling.set_ylabel('img/s')
    scaling.set_title(f"{diagnosis.verdict['bound']}-bound")
    scaling.legend(fontsize='small')
    figure.subplots_adjust(wspace=0.35)
    # a fixed canvas (no tight bounding box) so the PNG has FIGURE_SIZE pixels
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return path
