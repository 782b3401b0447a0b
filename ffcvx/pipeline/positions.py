"""Which Operation stands where: the decoder position and the transform positions.

Step 0 of a pipeline that reads a field is its decoder (spec/pipeline.md
PIP-001, PIP-002); every later step, and every step of a branch, runs as a
transform (PIP-011). Both rules are checked here, once, when the Loader
builds its pipelines.
"""
from ..errors import PipelineError
from .operation import Decoder, Operation


def fits_decoder_position(op, field):
    """Whether ``op`` can be step 0 of a pipeline reading ``field`` (PIP-002).

    FFCV's rule: an instance of the field's ``get_decoder_class()``; and an
    ffcvx :class:`~ffcvx.pipeline.operation.Decoder` that says it
    :meth:`~ffcvx.pipeline.operation.Decoder.decodes` the field.
    """
    if isinstance(op, field.get_decoder_class()):
        return True
    return isinstance(op, Decoder) and op.decodes(field)


def with_decoder(name, field, ops):
    """``ops`` with a decoder at step 0: theirs if it fits, else the field's default first (PIP-002).

    Parameters
    ----------
    name : str
        The output's name, for messages.
    field : Field
    ops : list of Operation

    Raises
    ------
    ValueError
        When ``ops[0]`` is a :class:`Decoder` that does not decode ``field``,
        or when the field's default decoder needs arguments (PIP-002).
    """
    decoder_class = field.get_decoder_class()
    if ops and fits_decoder_position(ops[0], field):
        return list(ops)
    if ops and isinstance(ops[0], Decoder):
        raise ValueError(f"pipeline {name!r}: {type(ops[0]).__name__} cannot decode a "
                         f"{type(field).__name__}; its decoder must be a {decoder_class.__name__} "
                         f"(spec/pipeline.md PIP-002)")
    try:
        decoder = decoder_class()
    except TypeError as exc:
        raise ValueError(f"pipeline {name!r}: the default decoder {decoder_class.__name__} needs "
                         f"arguments; put a decoder first in the pipeline ({exc})") from None
    return [decoder] + list(ops)


def as_transform(where, op: Operation):
    """The Operation that runs ``op``'s step after step 0 (PIP-011).

    Raises
    ------
    PipelineError
        When that is a :class:`Decoder`: a decoder reads a field's stored
        samples and can only be step 0.
    """
    role = op.as_transform()
    if isinstance(role, Decoder):
        raise PipelineError(f"{where}: {type(op).__name__} is a decoder and stands after step 0; "
                            f"a decoder can only be the first step of a pipeline "
                            f"(spec/pipeline.md PIP-011)")
    return role
