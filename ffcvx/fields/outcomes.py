"""What an image field did with one writer input: the labels its ``encode`` returns.

The writer counts them per field (``DatasetWriter.last_write``, its closing
line); fields that return None are not counted.
"""

__all__ = ['OUTCOMES', 'PASSED_THROUGH', 'RAW', 'REENCODED', 'SHRUNK']

#: An encoded JPEG stored byte for byte (``jpeg_passthrough``).
PASSED_THROUGH = 'passed through'
#: Shrunk to ``max_resolution``, then stored (as JPEG, PNG or raw pixels).
SHRUNK = 'shrunk'
#: Stored as a JPEG or PNG written here, at the input's size.
REENCODED = 're-encoded'
#: Stored as raw pixels at the input's size.
RAW = 'raw'

#: Every label, in the order the writer reports them.
OUTCOMES = (PASSED_THROUGH, SHRUNK, REENCODED, RAW)
