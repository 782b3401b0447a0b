"""Former home of the scalar, array and bytes decoders, kept as a re-export: use :mod:`ffcvx.decoders`."""
from ..decoders.basic import BytesDecoder, FloatDecoder, IntDecoder, NDArrayDecoder  # noqa: F401
