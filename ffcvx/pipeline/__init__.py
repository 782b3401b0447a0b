"""Compiled per-field pipelines: Operations, their declared State and memory (spec/pipeline.md)."""
from .allocation_query import AllocationQuery
from .compiler import Compiler
from .operation import Decoder, Operation
from .spec import PipelineSpec
from .state import State
from .step_code import StepCode

__all__ = ['AllocationQuery', 'Compiler', 'Decoder', 'Operation', 'PipelineSpec', 'State', 'StepCode']
