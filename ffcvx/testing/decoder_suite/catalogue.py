"""The list of checks of the decoder conformance suite, in the order they run and print.

Kept apart from the checks themselves so that the command line, the report
table and the test class name and order them the same way without importing
numpy or a backend.
"""
__all__ = ['CHECKS', 'CHECK_NAMES', 'DETAIL_PROPERTY', 'clauses_of']

#: Every check, in the order they run and print: (name, clauses, what it checks).
CHECKS = (
    ('interface', 'BKD-001..005', "attributes, formats, device, kind; available() returns (bool, str)"),
    ('function-address', 'BKD-010', "function_address('decode_region') is an int; other names KeyError"),
    ('jpeg-vectors', 'BKD-023', "JPEG spec vectors within BKD-023 of the reference pixels"),
    ('jpeg-golden', 'BKD-023', "FFCV 1.0.2 golden JPEGs within the golden README's max-abs tolerance"),
    ('png-vectors', 'BKD-023', "PNG spec vectors decode to exactly the source pixels"),
    ('raw-vectors', 'BKD-002', "raw spec vectors come back as exactly the stored pixels"),
    ('layout', 'BKD-012, BKD-030', "C-contiguous uint8 (H, W, 3); decode_region == decode_region_py"),
    ('crop', 'BKD-016, BKD-019', "crop decode == full decode then crop, exactly, edges included"),
    ('scale', 'BKD-017', "scaled size by the k/8 rule; pixels close to full decode then resize"),
    ('target-ignored', 'BKD-018', "without scale support a target changes nothing"),
    ('threads', 'BKD-006', "decode_region from 4 threads at once == serial decode"),
    ('capacity', 'BKD-014', "status -2, out untouched and out_hw filled when out is too small or NULL"),
    ('bad-arguments', 'BKD-015', "status -3 for bad crops; ValueError from decode_region_py"),
    ('corrupt', 'BKD-021, BKD-022', "truncated, damaged and foreign data: status -1 and DecodeError, no crash"),
    ('gray', 'BKD-025, BKD-026', "decode_region_gray == channel 0 of decode_region on gray JPEG/PNG; "
                                 "capacity -2, corrupt -1"),
    ('batch', 'BKD-042', "decode_batch: (B, H, W, 3) uint8 within BKD-023 of the reference"),
)
#: The check names alone, in the same order.
CHECK_NAMES = tuple(name for name, _, _ in CHECKS)

#: The ``user_properties`` key under which a test leaves its check's detail
#: (a pass's summary, a skip's reason, a failure's message) for the report.
DETAIL_PROPERTY = 'ffcvx_check_detail'


def clauses_of(check):
    """The BKD clauses check ``check`` enforces, e.g. ``'BKD-016, BKD-019'``.

    Raises
    ------
    KeyError
        If ``check`` is not one of :data:`CHECK_NAMES`.
    """
    for name, clauses, _ in CHECKS:
        if name == check:
            return clauses
    raise KeyError(f"no conformance check {check!r}; the checks are {', '.join(CHECK_NAMES)}")
