"""JSON documents: ``JSONField``, stored as UTF-8 text plus one NUL (FMT-035)."""
import json

import numpy as np

from .bytes import BytesField

#: Text encoding of the stored documents (FMT-035).
ENCODING = 'utf8'
#: Byte that ends each stored document (FMT-035).
SEPARATOR = '\0'


class JSONField(BytesField):
    """Any JSON-serialisable object per sample.

    Stored as ``json.dumps(obj).encode('utf-8') + b'\\0'`` in a bytes-like
    region (FMT-035), with the same ``{ptr, size}`` record as
    :class:`BytesField`. Read it with ``BytesDecoder`` and turn what the
    Loader yields back into objects with :meth:`unpack`.
    """

    @staticmethod
    def from_binary(binary):
        return JSONField()

    def encode(self, destination, field, malloc):
        """Store ``json.dumps(field)`` plus a NUL (FMT-035).

        Raises
        ------
        ValueError
            For NaN or an infinity anywhere in ``field``: they are not JSON
            (RFC 8259), and other readers would refuse the text.
        TypeError
            For an object ``json`` cannot serialise (numpy arrays, sets, ...).
        """
        try:
            text = json.dumps(field, allow_nan=False)
        except ValueError as exc:
            raise ValueError(f"JSONField cannot store NaN or infinity ({exc}); replace them, e.g. "
                             f"by None") from None
        except TypeError as exc:
            raise TypeError(f"JSONField stores only JSON values (dict, list, str, int, float, "
                            f"bool, None): {exc}") from None
        text = (text + SEPARATOR).encode(ENCODING)
        super().encode(destination, np.frombuffer(text, dtype=np.uint8), malloc)

    @staticmethod
    def unpack(batch):
        """Decode ``BytesDecoder`` output back into Python objects.

        Works on a whole batch, giving a list, or on one sample's row, giving
        that one object (as FFCV 1.0 does).

        Parameters
        ----------
        batch : ndarray[uint8] or torch.Tensor, shape (B, L) or (L,)
            Rows of stored text, each ending in a NUL (FMT-035); bytes after
            the first NUL are ignored (``BytesDecoder`` rows are as long as
            the longest sample and their tails are not cleared).

        Returns
        -------
        list or object
            One object per row for a 2-D ``batch``; the object itself for a
            1-D one.

        Raises
        ------
        json.JSONDecodeError, UnicodeDecodeError
            If a row's text is not UTF-8 JSON.
        """
        if hasattr(batch, 'detach'):  # a torch tensor, possibly on a GPU
            batch = batch.detach().cpu().numpy()
        rows = np.asarray(batch, dtype=np.uint8)
        single = rows.ndim == 1
        out = []
        for row in (rows[None] if single else rows):
            data = row.tobytes()
            end = data.find(SEPARATOR.encode(ENCODING))
            out.append(json.loads(data[:end if end >= 0 else len(data)].decode(ENCODING)))
        return out[0] if single else out
