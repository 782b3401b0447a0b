"""matplotlib for the figures of ``ffcvx doctor --plot`` and ``ffcvx info --stats --plot``.

matplotlib is the optional extra ``ffcvx[plot]``; :func:`pyplot` imports it
with the non-interactive Agg backend (no display needed) or says which
``pip install`` brings it.
"""
from .extras import require

__all__ = ['image_size', 'pyplot', 'save_figure']


def pyplot(user):
    """``matplotlib.pyplot`` on the Agg backend, for ``user`` (named in the error).

    Raises
    ------
    MissingExtraError
        If matplotlib is not installed: ``pip install 'ffcvx[plot]'``.
    """
    matplotlib = require('matplotlib', 'plot', user)
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def save_figure(figure, path, dpi=100):
    """Write ``figure`` to ``path`` (PNG by its suffix) and close it; returns ``path``."""
    figure.savefig(path, dpi=dpi, bbox_inches='tight')
    import matplotlib.pyplot as plt
    plt.close(figure)
    return path


def image_size(path):
    """``(width, height)`` in pixels of the image file at ``path`` (read by Pillow)."""
    from PIL import Image
    with Image.open(path) as image:
        return image.size
