"""JSON documents: ``JSONField``, stored as UTF-8 text plus one NUL (FMT-035)."""
import json

import numpy as np

from .bytes import BytesField


class JSONField(BytesField):
    """Any JSON-serialisable object per sample.

    Stored as ``json.dumps(obj).encode('utf-8') + b'\\0'`` in a bytes-like
    region (FMT-035). Read it with ``BytesDecoder`` and turn a batch back into
    objects with :meth:`unpack`.
    """

    @staticmethod
    def from_binary(binary):
        return JSONField()

    def encode(self, destination, field, malloc):
        text = json.dumps(field).encode('utf-8') + b'\0'
        super().encode(destination, np.frombuffer(text, dtype=np.uint8), malloc)

    @staticmethod
    def unpack(batch):
        """Decode a batch from ``BytesDecoder`` into Python objects.

        Parameters
        ----------
        batch : ndarray[uint8] or torch.Tensor, shape (B, L)
            Rows of stored text, each ending in a NUL (FMT-035).

        Returns
        -------
        list
            One object per row.
        """
        rows = batch.numpy() if hasattr(batch, 'numpy') else np.asarray(batch)
        out = []
        for row in rows:
            data = row.tobytes()
            end = data.find(b'\0')
            out.append(json.loads(data[:end if end >= 0 else len(data)].decode('utf-8')))
        return out
