"""Field types of a ``.beton`` file and the type ids that name them (FMT-022)."""
from .base import Field
from .basics import FloatField, IntField
from .rgb_image import GrayscaleImageField, RGBImageField
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
           'TorchTensorField', 'JSONField', 'GrayscaleImageField', 'TYPE_ID_HANDLER', 'type_id_of']
