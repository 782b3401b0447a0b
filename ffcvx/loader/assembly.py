"""From the Loader's ``pipelines`` argument to its Graph of compiled pipelines.

One output per field (file order), default pipelines for fields not named,
None to drop a field; then the extra outputs: FFCV 1.0's
``PipelineSpec(source=...)`` (another read of a field, or a branch from an
Operation's output) and FFCV-SSL's ``custom_field_mapper`` (another read of
a field under a new name).
"""
import torch

from ..fields import decoders as _decoders
from ..pipeline.graph import Branch, Graph, Pipeline
from ..pipeline.operation import Operation
from ..pipeline.spec import PipelineSpec
from ..transforms import ModuleWrapper, ToTensor

_BUILTIN_DECODERS = tuple(getattr(_decoders, n) for n in _decoders.__all__)


def as_operations(name, ops):
    """``ops`` with torch modules wrapped (FFCV's ``ModuleWrapper``), each checked to be an Operation."""
    ops = [ModuleWrapper(op) if isinstance(op, torch.nn.Module) else op for op in ops]
    for op in ops:
        if not isinstance(op, Operation):
            raise ValueError(f"pipeline {name!r}: {op!r} is not an Operation")
    return ops


def _operations_for(name, field, spec):
    decoder_class = field.get_decoder_class()
    if isinstance(spec, PipelineSpec):
        ops = ([spec.decoder] if spec.decoder is not None else []) + list(spec.transforms)
    else:
        ops = list(spec)
    ops = as_operations(name, ops)
    if ops and isinstance(ops[0], decoder_class):
        return ops
    if ops and isinstance(ops[0], _BUILTIN_DECODERS):
        raise ValueError(f"pipeline {name!r}: {type(ops[0]).__name__} cannot decode a "
                         f"{type(field).__name__}; its decoder must be a {decoder_class.__name__}")
    try:
        decoder = decoder_class()
    except TypeError as exc:
        raise ValueError(f"pipeline {name!r}: the default decoder {decoder_class.__name__} needs "
                         f"arguments; put a decoder first in the pipeline ({exc})") from None
    return [decoder] + ops


def _extras(pipelines, names, fname, field_mapper):
    # The outputs that are not fields, as (name, PipelineSpec), checked.
    extras = []
    for target, source in (field_mapper or {}).items():
        if source not in names:
            raise ValueError(f"custom_field_mapper maps {target!r} to {source!r}, which is not a "
                             f"field of {fname} (fields: {', '.join(names)})")
        if target in names:
            raise ValueError(f"custom_field_mapper's {target!r} is already a field of {fname}")
        spec = pipelines.get(target)
        if spec is None:
            raise ValueError(f"custom_field_mapper adds {target!r}: pass its pipeline in "
                             f"pipelines={{{target!r}: [...]}}")
        if isinstance(spec, PipelineSpec):
            spec = PipelineSpec(source, spec.decoder, list(spec.transforms))
        else:
            spec = PipelineSpec(source, None, list(spec))
        extras.append((target, spec))
    mapped = set(field_mapper or ())
    for name, spec in pipelines.items():
        if name in names or name in mapped:
            continue
        if not isinstance(spec, PipelineSpec):
            raise ValueError(f"pipelines has {name!r}, which is not a field of {fname} "
                             f"(fields: {', '.join(names)}); use PipelineSpec(source=...) "
                             f"for extra outputs")
        if isinstance(spec.source, Operation):
            if spec.decoder is not None:
                raise ValueError(f"PipelineSpec for {name!r} starts from an Operation's output, "
                                 f"so it takes no decoder; put its steps in transforms")
        elif spec.source not in names:
            raise ValueError(f"PipelineSpec for {name!r} reads unknown field {spec.source!r}")
        extras.append((name, spec))
    return extras


def build_graph(reader, pipelines, memory_read, batch_size, num_slots, select_backend,
                fname, field_mapper=None):
    """The Graph of every output, planned and compiled once.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    pipelines : dict of str to (list of Operation, PipelineSpec or None)
        The Loader's argument.
    memory_read : numba function
        The memory strategy's reader.
    batch_size, num_slots : int
    select_backend : callable(format) -> backend
    fname : str
        For messages.
    field_mapper : dict of str to str, optional
        FFCV-SSL's ``custom_field_mapper``: ``{new output: field it reads}``.

    Returns
    -------
    (Graph, dict of str to PipelineSpec)
        The graph and, per output, the spec it was built from.

    Raises
    ------
    ValueError
        For unknown fields, decoders that do not fit their field, and
        branches from Operations in no earlier pipeline.
    """
    names = list(reader.field_names)
    entries, specs = [], {}
    for index, name in enumerate(names):
        if name in pipelines:
            spec = pipelines[name]
            if spec is None:
                continue
        else:
            try:
                spec = [reader.handlers[name].get_decoder_class()(), ToTensor()]
            except TypeError:
                raise ValueError(f"field {name!r} has no default pipeline; pass one in "
                                 f"pipelines={{{name!r}: [...]}}") from None
        entries.append((name, index, spec))
    extras = _extras(pipelines, names, fname, field_mapper)
    # Operations that branches start from: a decoder among them keeps its own output.
    sources = {id(spec.source) for _, spec in extras if isinstance(spec.source, Operation)}
    built = []

    def add_pipeline(name, index, spec):
        field = reader.handlers[names[index]]
        ops = _operations_for(name, field, spec)
        specs[name] = spec if isinstance(spec, PipelineSpec) else PipelineSpec(names[index], ops[0], ops[1:])
        built.append(Pipeline(name, index, field, ops, reader.metadata[f'f{index}'], memory_read,
                              batch_size, num_slots, select_backend,
                              keep_decoder_output=id(ops[0]) in sources))

    for entry in entries:
        add_pipeline(*entry)
    for name, spec in extras:
        if not isinstance(spec.source, Operation):
            add_pipeline(name, names.index(spec.source), spec)
            continue
        steps = [p.step_of(spec.source) for p in built]
        source = next((step for step in steps if step is not None), None)
        if source is None:
            raise ValueError(f"PipelineSpec for {name!r} starts from {type(spec.source).__name__}, "
                             f"which is in no pipeline listed before it")
        specs[name] = spec
        built.append(Branch(name, source, as_operations(name, spec.transforms), batch_size, num_slots))
    return Graph(built), specs
