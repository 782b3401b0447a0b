"""PipelineSpec: where a pipeline's data come from and what runs on it."""
from dataclasses import dataclass, field
from typing import List, Optional

from .operation import Operation


@dataclass
class PipelineSpec:
    """An explicit pipeline description (FFCV 1.0's ``PipelineSpec``).

    Parameters
    ----------
    source : str
        Name of the field to read. Lets several outputs read one field, e.g.
        two differently augmented views of ``'image'``.
    decoder : Operation or None
        The decoder; None means the field's default decoder.
    transforms : list of Operation
        Run in order after the decoder.
    """

    source: str
    decoder: Optional[Operation] = None
    transforms: List[Operation] = field(default_factory=list)
