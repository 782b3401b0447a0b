"""Views sharing one decode: one rewrite pass over a Loader's outputs (spec/pipeline.md PIP-012).

Self-supervised recipes read one image field two or more times, each view
with its own random crop decoder. Two or more outputs that read one field
through decoders that :meth:`~ffcvx.pipeline.operation.Decoder.shares_decode`
are rewritten into one :class:`~ffcvx.pipeline.graph.Pipeline` whose step 0
is the decoders' shared decode (``Decoder.share_decode``, whose output is
one part per view, ``Operation.part_states``), followed by the first view's
transforms, and one :class:`~ffcvx.pipeline.graph.ViewBranch` per other
view that starts from its part. Each output keeps its name, its
Operations as given and its draws; only the decode is done once.
"""
from .graph import Pipeline, ViewBranch, fuse
from .operation import Decoder


def view_groups(reads, sources, select_backend):
    """``{output name: (leader name, position)}`` for the outputs that share one decode.

    Parameters
    ----------
    reads : list of (str, int, list of Operation)
        ``(output name, field index, operations)`` in output order, decoder first.
    sources : set of int
        ``id`` of the Operations that branches start from: a view with one
        of them keeps its own pipeline (its steps' outputs must be where
        ``PipelineSpec(source=...)`` finds them).
    select_backend : callable(format) -> backend
    """
    by_field = {}
    for name, index, ops in reads:
        decoder = ops[0]
        if (isinstance(decoder, Decoder) and not any(id(op) in sources for op in ops)
                and decoder.shares_decode(select_backend)):
            by_field.setdefault(index, []).append((name, decoder))
    groups = {}
    for members in by_field.values():
        if len(members) > 1 and len({id(d) for _, d in members}) == len(members):
            for position, (name, _) in enumerate(members):
                groups[name] = (members[0][0], position)
    return groups


class ViewSharing:
    """The rewrite of the outputs that share a decode, built in output order.

    Parameters
    ----------
    groups : dict
        From :func:`view_groups`.
    operations_of : callable(name) -> list of Operation
        Each output's Operations as given, decoder first.
    batch_size, num_slots : int
    """

    def __init__(self, groups, operations_of, batch_size, num_slots):
        self.groups = groups
        self._operations_of = operations_of
        self.batch_size, self.num_slots = batch_size, num_slots
        self._leaders = {}

    def __contains__(self, name):
        return name in self.groups

    def build(self, name, pipeline_args):
        """The Pipeline (a group's first view) or ViewBranch (any other) of output ``name``.

        ``pipeline_args`` are :class:`Pipeline`'s arguments after the
        operations: ``(field_index, field, metadata, memory_read, batch_size,
        num_slots, select_backend)``. A view comes after its group's first.
        """
        leader, position = self.groups[name]
        ops = self._operations_of(name)
        if position > 0:
            return ViewBranch(name, self._leaders[leader].steps[0], position, ops, fuse(ops)[1:],
                              self.batch_size, self.num_slots)
        members = [n for n in self.groups if self.groups[n][0] == name]
        views = [fuse(self._operations_of(n)) for n in members]
        shared = views[0][0].share_decode([v[0] for v in views], members)
        field_index, field, *after = pipeline_args
        pipeline = Pipeline(name, field_index, field, [shared] + views[0][1:], *after,
                            keep_decoder_output=True)
        pipeline.operations = list(ops)       # as the user gave them (FFCV's Loader.pipelines)
        self._leaders[name] = pipeline
        return pipeline
