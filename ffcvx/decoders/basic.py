"""Decoders of scalar, array and byte-string fields (IntField, FloatField, NDArrayField, BytesField)."""
import numpy as np
import torch

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Decoder
from ..pipeline.state import State

_CPU = torch.device('cpu')


class _ScalarDecoder(Decoder):
    dtype = None

    def declare_state_and_memory(self, previous_state):
        return State(True, _CPU, (1,), np.dtype(self.dtype)), AllocationQuery((1,), np.dtype(self.dtype))

    def generate_code(self):
        def decode(batch_indices, destination, metadata, storage_state):
            for i in range(batch_indices.shape[0]):
                destination[i, 0] = metadata[batch_indices[i]]
            return destination
        return decode


class IntDecoder(_ScalarDecoder):
    """IntField -> ``ndarray[int64], shape (B, 1)`` (FMT-032)."""

    dtype = '<i8'


class FloatDecoder(_ScalarDecoder):
    """FloatField -> ``ndarray[float64], shape (B, 1)`` (FMT-032)."""

    dtype = '<f8'


class NDArrayDecoder(Decoder):
    """NDArrayField / TorchTensorField -> ``ndarray[dtype], shape (B, *shape)`` (FMT-034).

    The bytes are copied by compiled code into a uint8 buffer and handed on as
    a view of the field's dtype, so any dtype works (float16 included). A
    stored non-native byte order (``'>f4'``, FMT-034) is converted to native
    order, same values (torch takes native order only).
    """

    def declare_state_and_memory(self, previous_state):
        field = self.field
        state = State(True, _CPU, tuple(field.shape), field.dtype.newbyteorder('='))
        return state, AllocationQuery((field.element_size,), np.dtype(np.uint8))

    def generate_code(self):
        mem_read = self.memory_read
        nbytes = self.field.element_size
        my_range = Compiler.get_iterator()

        def decode(batch_indices, destination, metadata, storage_state):
            for i in my_range(batch_indices.shape[0]):
                data = mem_read(metadata[batch_indices[i]], storage_state)
                destination[i, :] = data[:nbytes]
            return destination
        decode.is_parallel = True
        return decode

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        dtype = self.field.dtype
        values = result.view(dtype).reshape((result.shape[0],) + tuple(self.field.shape))
        return values if dtype.isnative else values.astype(dtype.newbyteorder('='))


class BytesDecoder(Decoder):
    """BytesField / JSONField -> ``ndarray[uint8], shape (B, L)`` (FMT-033, FMT-035).

    ``L`` is the largest payload in the file. Row ``i`` holds sample ``i``'s
    payload followed by zeros (FFCV left the tail unspecified; ffcvx clears it,
    so a JSON row always ends in NUL). Sizes come from the metadata, not the
    allocation table (golden ``bytes_json``: zero-size regions share a ptr).
    """

    def declare_state_and_memory(self, previous_state):
        sizes = self.metadata['size']
        self.max_size = int(sizes.max()) if len(sizes) else 0
        return (State(True, _CPU, (self.max_size,), np.dtype(np.uint8)),
                AllocationQuery((self.max_size,), np.dtype(np.uint8)))

    def generate_code(self):
        mem_read = self.memory_read
        my_range = Compiler.get_iterator()

        def decode(batch_indices, destination, metadata, storage_state):
            width = destination.shape[1]
            for i in my_range(batch_indices.shape[0]):
                record = metadata[batch_indices[i]]
                size = record['size']
                if size > 0:
                    data = mem_read(record['ptr'], storage_state)
                    destination[i, :size] = data[:size]
                destination[i, size:width] = 0
            return destination
        decode.is_parallel = True
        return decode
