"""From the Loader's ``pipelines`` argument to its Graph of compiled pipelines.

One output per field (file order), default pipelines for fields not named,
None to drop a field; then the extra outputs: FFCV 1.0's
``PipelineSpec(source=...)`` (another read of a field, or a branch from an
Operation's output) and FFCV-SSL's ``custom_field_mapper`` (another read of
a field under a new name).
"""
import torch

from ..decoders.views import ViewsDecoder, can_share
from ..errors import BackendNotFoundError
from ..pipeline.graph import Branch, Graph, Pipeline, ViewBranch, fuse
from ..pipeline.operation import Operation
from ..pipeline.positions import with_decoder
from ..pipeline.spec import PipelineSpec
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


def _per_sample_jpeg(select_backend):
    # A shared decode of views runs in the per-sample engine only.
    try:
        return getattr(select_backend('jpeg'), 'kind', None) != 'batch'
    except BackendNotFoundError:    # no JPEG backend: the views' own decoders will say so
        return False


def _view_groups(reads, sources, shareable):
    """``{output name: (leader name, position)}`` for the outputs that share one decode.

    ``reads`` is ``[(name, field index, operations)]`` in output order. Two or
    more outputs whose crop decoders :func:`can_share` and read one field
    form a group; a view with a step that a branch starts from keeps its own.
    """
    by_field = {}
    for name, index, ops in reads:
        decoder = ops[0]
        # A view with a step that a branch starts from keeps its own pipeline
        # (its steps' outputs must be where PipelineSpec(source=...) finds them).
        if shareable and can_share(decoder) and not any(id(op) in sources for op in ops):
            by_field.setdefault(index, []).append((name, decoder))
    groups = {}
    for members in by_field.values():
        if len(members) > 1 and len({id(d) for _, d in members}) == len(members):
            for position, (name, _) in enumerate(members):
                groups[name] = (members[0][0], position)
    return groups


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
    groups = _view_groups([r[:3] for r in reads], sources, _per_sample_jpeg(select_backend))
    leaders = {}

    def add_pipeline(name):
        index, ops, spec = ops_of[name]
        field = reader.handlers[names[index]]
        specs[name] = spec if isinstance(spec, PipelineSpec) else PipelineSpec(names[index], ops[0], ops[1:])
        if name not in groups:
            built.append(Pipeline(name, index, field, ops, reader.metadata[f'f{index}'], memory_read,
                                  batch_size, num_slots, select_backend,
                                  keep_decoder_output=id(ops[0]) in sources))
            return
        leader, position = groups[name]
        if position > 0:
            built.append(ViewBranch(name, leaders[leader].steps[0], position, ops, fuse(ops)[1:],
                                    batch_size, num_slots))
            return
        members = [n for n in groups if groups[n][0] == name]
        views = [fuse(ops_of[n][1]) for n in members]
        shared = ViewsDecoder([v[0] for v in views], members)
        pipeline = Pipeline(name, index, field, [shared] + views[0][1:], reader.metadata[f'f{index}'],
                            memory_read, batch_size, num_slots, select_backend,
                            keep_decoder_output=True)
        pipeline.operations = list(ops)       # as the user gave them (FFCV's Loader.pipelines)
        leaders[name] = pipeline
        built.append(pipeline)

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
