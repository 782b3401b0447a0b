"""From the Loader's ``pipelines`` argument to its Graph of compiled pipelines.

One output per field (file order), default pipelines for fields not named,
None to drop a field; then the extra outputs: FFCV 1.0's
``PipelineSpec(source=...)`` (another read of a field, or a branch from an
Operation's output) and FFCV-SSL's ``custom_field_mapper`` (another read of
a field under a new name).
"""
import torch

from ..pipeline.graph import Branch, Graph, Pipeline
from ..pipeline.operation import Operation
from ..pipeline.positions import with_decoder
from ..pipeline.spec import PipelineSpec
from ..pipeline.view_sharing import ViewSharing, view_groups
from ..transforms import ModuleWrapper, ToTensor


def as_operations(name, ops):
    """``ops`` with torch modules wrapped (FFCV's ``ModuleWrapper``), each checked to be an Operation."""
    ops = [ModuleWrapper(op) if isinstance(op, torch.nn.Module) else op for op in ops]
    for op in ops:
        if not isinstance(op, Operation):
            raise ValueError(f"pipeline {name!r}: {op!r} is not an Operation")
    return ops


def _operations_for(name, field, spec):
    if isinstance(spec, PipelineSpec):
        ops = ([spec.decoder] if spec.decoder is not None else []) + list(spec.transforms)
    else:
        ops = list(spec)
    return with_decoder(name, field, as_operations(name, ops))


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
    reads = [(name, index, _operations_for(name, reader.handlers[names[index]], spec), spec)
             for name, index, spec in entries]
    reads += [(name, names.index(spec.source),
               _operations_for(name, reader.handlers[spec.source], spec), spec)
              for name, spec in extras if not isinstance(spec.source, Operation)]
    ops_of = {name: (index, ops, spec) for name, index, ops, spec in reads}
    # Outputs whose decoders share one decode: the pipeline layer's rewrite (PIP-012).
    sharing = ViewSharing(view_groups([r[:3] for r in reads], sources, select_backend),
                          lambda name: ops_of[name][1], batch_size, num_slots)

    def add_pipeline(name):
        index, ops, spec = ops_of[name]
        field = reader.handlers[names[index]]
        specs[name] = spec if isinstance(spec, PipelineSpec) else PipelineSpec(names[index], ops[0], ops[1:])
        args = (index, field, reader.metadata[f'f{index}'], memory_read, batch_size, num_slots,
                select_backend)
        if name in sharing:
            built.append(sharing.build(name, args))
        else:
            built.append(Pipeline(name, index, field, ops, *args[2:],
                                  keep_decoder_output=id(ops[0]) in sources))

    for name, _, _ in entries:
        add_pipeline(name)
    for name, spec in extras:
        if not isinstance(spec.source, Operation):
            add_pipeline(name)
            continue
        steps = [p.step_of(spec.source) for p in built]
        source = next((step for step in steps if step is not None), None)
        if source is None:
            raise ValueError(f"PipelineSpec for {name!r} starts from {type(spec.source).__name__}, "
                             f"which is in no pipeline listed before it")
        specs[name] = spec
        built.append(Branch(name, source, as_operations(name, spec.transforms), batch_size, num_slots))
    return Graph(built), specs
