"""Compiled per-field pipelines: Operations, their declared State and memory."""
from .allocation_query import AllocationQuery
from .compiler import Compiler
from .operation import Operation
from .spec import PipelineSpec
from .state import State

__all__ = ['AllocationQuery', 'Compiler', 'Operation', 'PipelineSpec', 'State']
