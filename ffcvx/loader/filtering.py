"""``Loader.filter`` (FFCV's API): a Loader over the samples whose decoded field passes a test."""
import numpy as np

from ..traversal_order import Sequential

__all__ = ['filter_loader']


def filter_loader(loader, field_name, condition):
    """The body of :meth:`ffcvx.loader.Loader.filter` (see there)."""
    if field_name not in loader.reader.field_names:
        raise ValueError(f"filter: {field_name!r} is not a field of {loader.fname} "
                         f"(fields: {', '.join(loader.reader.field_names)})")
    given = loader._args['pipelines'] or {}
    pipelines = {name: None for name in loader.reader.field_names if name != field_name}
    if field_name in given:
        pipelines[field_name] = given[field_name]
    # in dataset order, every sample once: Sequential is what OrderOption.SEQUENTIAL names
    probe = type(loader)(**{**loader._args, 'pipelines': pipelines, 'order': Sequential,
                            'drop_last': False, 'distributed': False, 'custom_field_mapper': None,
                            'indices': loader.indices})
    selected = []
    with probe:
        position = 0
        for (batch,) in probe:
            for sample in batch:
                if condition(sample):
                    # FFCV kept the position; the sample's number is what indices means.
                    selected.append(int(loader.indices[position]))
                position += 1
    return type(loader)(**{**loader._args, 'indices': np.asarray(selected, dtype=np.uint64)})

