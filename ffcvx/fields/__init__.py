"""Field types of a ``.beton`` file and the type ids that name them (FMT-022).

Also the ffcvx extension fields that are stored as custom fields (type id
255) and recognised by the marker their descriptor ``arguments`` start with
(FMT-087).
"""
from types import MappingProxyType

from .base import Field
from .basics import FloatField, IntField
from .rgb_image import GRAY_MAGIC, GrayscaleImageField, RGBImageField
from .bytes import BytesField
from .ndarray import NDArrayField, TorchTensorField
from .json import JSONField

#: Field class for each built-in type id (FMT-022). Type id 6 reads back as an
#: NDArrayField, exactly as FFCV 1.0 does.
TYPE_ID_HANDLER = {
    0: FloatField,
    1: IntField,
    2: RGBImageField,
    3: BytesField,
    4: NDArrayField,
    5: JSONField,
    6: NDArrayField,
}

#: Field class of each ffcvx extension stored with type id 255, keyed by the
#: marker (ASCII text and its terminating zero byte) that its descriptor
#: ``arguments`` start with (FMT-087). Read-only: the set of markers is part
#: of the format, so it is not something to register into at run time; users
#: name other custom classes with ``custom_handlers`` / ``custom_fields``.
EXTENSION_MARKERS = MappingProxyType({
    GRAY_MAGIC: GrayscaleImageField,   # FMT-083, FMT-084
})


def extension_field_class(arguments):
    """The ffcvx extension class a custom field's ``arguments`` are marked with (FMT-087).

    Parameters
    ----------
    arguments : bytes-like, e.g. ndarray[uint8], shape (1024,)
        A field descriptor's ``arguments`` (FMT-020).

    Returns
    -------
    type[Field] or None
        The class of :data:`EXTENSION_MARKERS` whose marker starts
        ``arguments``, or None when no known marker does. The class's own
        ``from_binary`` still checks the rest of the arguments.
    """
    # memoryview takes bytes, a descriptor's uint8 array and an ARG_TYPE void alike
    raw = memoryview(arguments).tobytes()
    for marker, cls in EXTENSION_MARKERS.items():
        if raw.startswith(marker):
            return cls
    return None


def type_id_of(field):
    """Type id the writer stores for ``field`` (FMT-022): exact class match, else 255.

    GrayscaleImageField (an ffcvx extension) is not in the map on purpose: it
    is stored as 255 so that FFCV 1.0 refuses it cleanly (FMT-083).
    """
    for type_id, cls in ((0, FloatField), (1, IntField), (2, RGBImageField), (3, BytesField),
                         (4, NDArrayField), (5, JSONField), (6, TorchTensorField)):
        if type(field) is cls:
            return type_id
    return 255


__all__ = ['Field', 'FloatField', 'IntField', 'RGBImageField', 'BytesField', 'NDArrayField',
           'TorchTensorField', 'JSONField', 'GrayscaleImageField', 'TYPE_ID_HANDLER', 'EXTENSION_MARKERS',
           'extension_field_class', 'type_id_of']
