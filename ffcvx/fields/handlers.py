"""The Field a reader builds for one stored field descriptor (FMT-022, FMT-065..067, FMT-087)."""
from ..errors import BetonFormatError
from ..types import CUSTOM_TYPE_ID, FieldDescType
from . import TYPE_ID_HANDLER, extension_field_class

_ARGUMENTS_AT = FieldDescType.fields['arguments'][1]


def make_handler(index, name, type_id, arguments, at, custom_handlers):
    """Build the Field of descriptor ``index`` with its class's ``from_binary(arguments)``.

    Parameters
    ----------
    index : int
        Position of the descriptor in the file, for messages.
    name : str
        The field's name.
    type_id : int
        Stored type id (FMT-022).
    arguments : ndarray[uint8], shape (1024,)
        The descriptor's ``arguments`` bytes.
    at : int, bytes
        File offset of the descriptor, for errors.
    custom_handlers : Mapping[str, type[Field]]
        Class per field name; wins over the stored type id, as in FFCV.

    Returns
    -------
    Field

    Raises
    ------
    BetonFormatError
        FMT-065 for an unknown type id, FMT-066 for a type-255 field with no
        class (or whose marked extension class refuses its arguments, FMT-087),
        FMT-067 when a built-in class refuses its arguments.
    """
    if name in custom_handlers:
        return custom_handlers[name].from_binary(arguments)
    if type_id == CUSTOM_TYPE_ID:
        cls, refusals, refused = _extension_class(index, name, arguments, at)
    else:
        cls, refusals, refused = _builtin_class(index, name, type_id, at)
    try:
        return cls.from_binary(arguments)
    except refusals as exc:
        raise refused(exc) from None


def _builtin_class(index, name, type_id, at):
    """``(cls, refusals, refused)`` for a built-in type id (FMT-065, FMT-067).

    ``cls.from_binary`` raising one of ``refusals`` means the arguments break
    the class's clause; ``refused(exc)`` is the BetonFormatError to raise.
    """
    cls = TYPE_ID_HANDLER.get(type_id)
    if cls is None:
        known = ", ".join(f"{tid} ({c.__name__})" for tid, c in sorted(TYPE_ID_HANDLER.items())
                          if c is not None)
        raise BetonFormatError(
            f"field {index} {name!r} has unknown type id {type_id}; known type ids are "
            f"{known} and 255 (custom)", offset=at, clause='FMT-065')

    def refused(exc):
        return BetonFormatError(f"field {index} {name!r}: bad {cls.__name__} arguments: {exc}",
                                offset=at + _ARGUMENTS_AT, clause='FMT-067')
    return cls, Exception, refused


def _extension_class(index, name, arguments, at):
    """As :func:`_builtin_class`, for a type-255 descriptor the user gave no class for.

    FMT-087 for a marked extension class, else FMT-066.
    """
    how = (f"pass its class as custom_handlers={{{name!r}: FieldClass}} to Reader "
           f"(custom_fields= to Loader)")
    cls = extension_field_class(arguments)
    if cls is None:
        raise BetonFormatError(
            f"field {index} {name!r} has type id 255 (a custom field class) and its arguments "
            f"carry no ffcvx extension marker; {how}", offset=at, clause='FMT-066')

    def refused(exc):
        # The marker names the class, but the rest of the arguments break its
        # clause: the field is not one ffcvx can vouch for, so it is as
        # unknown as any other custom field (FMT-087).
        return BetonFormatError(
            f"field {index} {name!r} has type id 255 and the {cls.__name__} marker, but "
            f"{cls.__name__} refuses its arguments ({exc}); {how}", offset=at,
            clause='FMT-066')
    return cls, ValueError, refused
