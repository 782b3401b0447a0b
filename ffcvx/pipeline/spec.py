"""PipelineSpec: where a pipeline's data come from and what runs on it."""
from dataclasses import dataclass, field
from typing import List, Optional, Union

from .operation import Operation


@dataclass
class PipelineSpec:
    """An explicit pipeline description (FFCV 1.0's ``PipelineSpec``).

    Parameters
    ----------
    source : str or Operation
        Name of the field to read (several outputs may read one field, each
        decoding it), or an Operation of another pipeline: this output then
        starts from that Operation's output, a copy taken for every batch,
        e.g. two differently augmented views of one decode.
    decoder : Operation or None
        The decoder; None means the field's default decoder. Must be None
        when ``source`` is an Operation.
    transforms : list of Operation
        Run in order after the decoder.
    """

    source: Union[str, Operation]
    decoder: Optional[Operation] = None
    transforms: List[Operation] = field(default_factory=list)
