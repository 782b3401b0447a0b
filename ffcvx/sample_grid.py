"""What the model sees: a grid of a Loader's samples, as images, each with its index and label.

:func:`show` takes the images a Loader hands out (after the image pipeline:
decoders, crops, flips; normalised tensors are mapped back to pixels) and
lays them out with Pillow alone, several views of one sample side by side.
``ffcvx show`` is its command line.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ['Cell', 'GridLayout', 'show']

#: Default cell side (pixels) is the largest image side, within these bounds.
MIN_TILE, MAX_TILE = 96, 256
_GAP = 4                      # pixels between views and around cells
_BACKGROUND = (24, 24, 24)    # dark, so that the caption (white) and any image stand out
_CAPTION = (240, 240, 240)


@dataclass(frozen=True)
class Cell:
    """One sample of the grid.

    Attributes
    ----------
    index : int
        The sample's number in the file.
    label : int or None
    caption : str
        The text printed under the views.
    view_boxes : tuple of (int, int, int, int)
        Per image output (view), the pasted image's ``(left, top, right, bottom)``
        in the grid's pixels (right and bottom exclusive).
    """

    index: int
    label: object
    caption: str
    view_boxes: tuple


@dataclass(frozen=True)
class GridLayout:
    """Where :func:`show` put each sample.

    Attributes
    ----------
    size : (int, int)
        The grid image's (width, height) in pixels.
    columns : int
    tile : int
        Side of each view's square slot, pixels.
    image_outputs : tuple of str
        The Loader outputs drawn, left to right in each cell.
    label_output : str or None
    cells : tuple of Cell
        In the Loader's order, row by row.
    """

    size: tuple
    columns: int
    tile: int
    image_outputs: tuple
    label_output: object
    cells: tuple


def _numpy(value):
    # torch tensors (any device) -> ndarray, without importing torch for ndarray batches
    if hasattr(value, 'detach') and hasattr(value, 'cpu'):
        value = value.detach().cpu()
        if str(value.dtype) in ('torch.float16', 'torch.bfloat16'):
            value = value.float()
        return value.numpy(), True
    return np.asarray(value), False


def _image_layout(array, is_tensor):
    """'hwc', 'chw', 'hw' or None (not an image batch) for a batch ``array``."""
    if array.dtype.kind not in 'uif' or array.ndim not in (3, 4) or array.shape[0] < 1:
        return None
    if array.ndim == 3:
        return 'hw' if array.dtype == np.uint8 and min(array.shape[1:]) > 1 else None
    channels_last = array.shape[3] in (1, 3, 4)
    if is_tensor and array.shape[1] in (1, 3, 4) and not channels_last:
        return 'chw'
    return 'hwc' if channels_last else ('chw' if array.shape[1] in (1, 3, 4) else None)


def _normalizer(loader, name):
    """The ``NormalizeImage`` of output ``name``'s pipeline, or None."""
    from .transforms import NormalizeImage

    pipeline = getattr(loader, 'pipelines', {}).get(name)
    for op in getattr(pipeline, 'operations', None) or ():
        if isinstance(op, NormalizeImage):
            return op
    return None


def to_pixels(batch_images, layout, normalizer=None):
    """One output's images as a new uint8 ``(B, H, W, C)`` (C 1 or 3) for display.

    Float images are mapped back through ``normalizer`` (``x * std + mean``)
    when there is one; else taken as 0..1 or 0..255 when they lie in that
    range, else rescaled from each image's min..max.
    """
    x = batch_images
    if layout == 'hw':
        x = x[..., None]
    elif layout == 'chw':
        x = x.transpose(0, 2, 3, 1)
    if normalizer is not None and x.dtype == np.int16 and normalizer.type == np.float16:
        x = x.view(np.float16)  # NormalizeImage's float16 before ToTensor is its bit pattern
    x = x.astype(np.float64) if x.dtype != np.uint8 else x
    if x.dtype != np.uint8:
        if normalizer is not None:
            x = x * normalizer.std.reshape(-1)[:x.shape[3]] + normalizer.mean.reshape(-1)[:x.shape[3]]
        elif x.min() >= 0 and x.max() <= 1 and x.dtype.kind == 'f':
            x = x * 255
        elif x.min() < 0 or x.max() > 255:
            low = x.min(axis=(1, 2, 3), keepdims=True)
            span = np.maximum(x.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
            x = (x - low) / span * 255
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if x.shape[3] == 4:
        x = x[..., :3]  # alpha dropped: the grid is opaque
    elif x.shape[3] == 2:
        x = x[..., :1]
    # a copy: the Loader reuses its batch buffers once it has run a few batches ahead
    return np.array(x, copy=True)


def _collect(loader, n, image_outputs, label_output):
    """The first ``n`` samples of a new epoch: (indices, labels, images per output, outputs, label)."""
    names = tuple(getattr(getattr(loader, 'graph', None), 'output_names', ()) or ())
    iterator = iter(loader)
    order = np.asarray(getattr(iterator, 'order', np.arange(0)), dtype=np.int64)
    indices, labels, images = [], [], {}
    try:
        for batch in iterator:
            batch = batch if isinstance(batch, (tuple, list)) else (batch,)
            outs = names if len(names) == len(batch) else tuple(f"output{k}" for k in range(len(batch)))
            arrays = {name: _numpy(value) for name, value in zip(outs, batch)}
            if image_outputs is None:
                image_outputs = tuple(k for k, (a, t) in arrays.items() if _image_layout(a, t))
                if not image_outputs:
                    raise ValueError(f"the Loader's outputs {', '.join(outs)} hold no image batch")
            if label_output is None:
                label_output = next((k for k, (a, _) in arrays.items() if a.dtype.kind in 'iu'
                                     and (a.ndim == 1 or a.shape[1:] == (1,))), False)
            missing = [k for k in (*image_outputs, label_output or None) if k and k not in arrays]
            if missing:
                raise ValueError(f"no Loader output {missing[0]!r}; the outputs are {', '.join(outs)}")
            rows = min(len(arrays[image_outputs[0]][0]), n - len(indices))
            start = len(indices)
            indices += [int(order[start + r]) if start + r < len(order) else start + r
                        for r in range(rows)]
            labels += (arrays[label_output][0].reshape(len(arrays[label_output][0]), -1)[:rows, 0]
                       .tolist() if label_output else [None] * rows)
            for name in image_outputs:
                array, is_tensor = arrays[name]
                layout = _image_layout(array, is_tensor)
                if layout is None:
                    raise ValueError(f"output {name!r} is not an image batch (shape {array.shape})")
                images.setdefault(name, []).extend(
                    to_pixels(array[:rows], layout, _normalizer(loader, name)))
            if len(indices) >= n:
                break
    finally:
        close = getattr(iterator, 'close', None)
        if close is not None:
            close()
    if not indices:
        raise ValueError("the Loader gave no samples (fewer samples than one batch with "
                         "drop_last=True?)")
    return indices, labels, images, tuple(image_outputs), (label_output or None)


def _font():
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=12)
    except Exception:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(pixels, tile):
    """A PIL image of ``pixels`` (H, W, C) scaled to fit a ``tile`` square, aspect kept."""
    from PIL import Image

    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    h, w = pixels.shape[:2]
    scale = tile / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return image
    # enlarged: whole pixels stay visible (e.g. 28x28); shrunk: smooth
    return image.resize(size, Image.NEAREST if scale > 1 else Image.BILINEAR)


def show(loader, n=16, columns=None, image_outputs=None, label_output=None, tile=None,
         class_names=None, return_layout=False):
    """A grid of ``n`` samples as the Loader hands them to the model.

    Starts a new epoch of ``loader`` (so it advances its epoch counter) and
    stops it after ``n`` samples. Each cell shows one sample: its image
    outputs (views) side by side, and the caption ``#index  label k``.

    Parameters
    ----------
    loader : ffcvx.loader.Loader
        Image outputs may be ndarray ``(B, H, W, C)`` or ``(B, H, W)``, or
        torch tensors ``(B, C, H, W)`` or ``(B, H, W, C)``, uint8 or float.
        Float outputs whose pipeline has a ``NormalizeImage`` are mapped back
        with its mean and std; other floats are read as 0..1 or 0..255 when
        in range, else rescaled per image.
    n : int
        Samples to draw, >= 1 (fewer if the epoch is shorter).
    columns : int, optional
        Cells per row; default about ``sqrt(n)`` (fewer for several views).
    image_outputs : sequence of str, optional
        Outputs to draw, left to right; default every output holding images.
    label_output : str, optional
        Default: the first integer output of shape (B,) or (B, 1).
    tile : int, optional
        Side in pixels of the square each view is fitted into (aspect kept);
        default the largest image side, clipped to 96..256.
    class_names : sequence of str, optional
        Printed after the label (``class_names[label]``).
    return_layout : bool
        Also return the :class:`GridLayout`.

    Returns
    -------
    PIL.Image.Image or (PIL.Image.Image, GridLayout)
        An RGB image (shown inline by notebooks).

    Raises
    ------
    ValueError
        If ``n`` < 1, an output named is missing or holds no images, or the
        Loader gives no sample.
    """
    from PIL import Image, ImageDraw

    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if isinstance(image_outputs, str):
        image_outputs = (image_outputs,)
    indices, labels, images, outputs, label_output = _collect(
        loader, int(n), image_outputs and tuple(image_outputs), label_output)
    count, views = len(indices), len(outputs)
    if tile is None:
        largest = max(max(p.shape[:2]) for name in outputs for p in images[name])
        tile = min(MAX_TILE, max(MIN_TILE, largest))
    tile = int(tile)
    if columns is None:
        columns = max(1, round(np.sqrt(count / views)))
    columns = max(1, min(int(columns), count))
    font = _font()
    captions = [_caption(i, k, class_names) for i, k in zip(indices, labels)]
    measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    text_h = max(measure.textbbox((0, 0), c + 'gy', font=font)[3] for c in captions) + 2
    cell_w = views * tile + (views - 1) * _GAP
    cell_h = tile + text_h
    rows = -(-count // columns)
    size = (_GAP + columns * (cell_w + _GAP), _GAP + rows * (cell_h + _GAP))
    grid = Image.new('RGB', size, _BACKGROUND)
    draw = ImageDraw.Draw(grid)
    cells = []
    for k in range(count):
        left = _GAP + (k % columns) * (cell_w + _GAP)
        top = _GAP + (k // columns) * (cell_h + _GAP)
        boxes = []
        for v, name in enumerate(outputs):
            picture = _fit(images[name][k], tile)
            x = left + v * (tile + _GAP) + (tile - picture.width) // 2
            y = top + (tile - picture.height) // 2
            grid.paste(picture.convert('RGB'), (x, y))
            boxes.append((x, y, x + picture.width, y + picture.height))
        draw.text((left, top + tile + 1), captions[k], fill=_CAPTION, font=font)
        cells.append(Cell(indices[k], labels[k], captions[k], tuple(boxes)))
    if not return_layout:
        return grid
    return grid, GridLayout(size, columns, tile, outputs, label_output, tuple(cells))


def _caption(index, label, class_names):
    if label is None:
        return f"#{index}"
    text = f"#{index}  label {label}"
    if class_names is not None and 0 <= label < len(class_names):
        text += f" {class_names[label]}"
    return text
