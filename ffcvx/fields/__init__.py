"""Field types of a ``.beton`` file and the type ids that name them (FMT-022).

:data:`TYPE_ID_HANDLER` is the one table of type ids: the writer stores the
id whose class is exactly the field's class (:func:`type_id_of`), the reader
builds a field with ``TYPE_ID_HANDLER[type_id].from_binary(arguments)``.

Also the ffcvx extension fields that are stored as custom fields (type id
255) and recognised by the marker their descriptor ``arguments`` start with
(FMT-087).
"""
from types import MappingProxyType

from ..types import CUSTOM_TYPE_ID
from .base import Field, MetadataColumn, RegionTable
from .basics import FloatField, IntField
from .rgb_image import GRAY_MAGIC, GrayscaleImageField, ImageField, RGBImageField
from .bytes import BytesField
from .ndarray import NDArrayField, TorchTensorField
from .json import JSONField

#: Field class of each type id, FFCV 1.0's table (FMT-022); 255 (custom) maps
#: to None: the user names the class. Read-only. A type id names the class
#: that *writes* it: reading goes through ``from_binary``, so type id 6 reads
#: back as an NDArrayField (TorchTensorField inherits NDArrayField's), as in FFCV.
TYPE_ID_HANDLER = MappingProxyType({
    CUSTOM_TYPE_ID: None,
    0: FloatField,
    1: IntField,
    2: RGBImageField,
    3: BytesField,
    4: NDArrayField,
    5: JSONField,
    6: TorchTensorField,
})

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

    A subclass of a built-in class is a custom field (255), as in FFCV;
    GrayscaleImageField (an ffcvx extension) is not in the table on purpose:
    it is stored as 255 so that FFCV 1.0 refuses it cleanly (FMT-083).
    """
    for type_id, cls in TYPE_ID_HANDLER.items():
        if cls is not None and type(field) is cls:
            return type_id
    return CUSTOM_TYPE_ID


def get_handlers(field_descriptors):
    """FFCV 1.0's ``get_handlers``: one field per descriptor, None for custom fields.

    No validation, unlike :class:`ffcvx.reader.Reader`, which also applies
    ``custom_handlers`` and extension markers and checks the whole file.

    Parameters
    ----------
    field_descriptors : ndarray[FieldDescType], shape (F,)

    Returns
    -------
    list of Field or None

    Raises
    ------
    KeyError
        For a type id that is not in :data:`TYPE_ID_HANDLER` (7 to 254).
    """
    handlers = []
    for descriptor in field_descriptors:
        cls = TYPE_ID_HANDLER[int(descriptor['type_id'])]
        handlers.append(None if cls is None else cls.from_binary(descriptor['arguments']))
    return handlers


__all__ = ['Field', 'FloatField', 'IntField', 'RGBImageField', 'BytesField', 'NDArrayField',
           'TorchTensorField', 'JSONField', 'GrayscaleImageField', 'ImageField', 'MetadataColumn',
           'RegionTable', 'TYPE_ID_HANDLER', 'EXTENSION_MARKERS', 'extension_field_class',
           'get_handlers', 'type_id_of']
