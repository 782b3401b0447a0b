"""ffcvx decoder backend for JPEG using the system libjpeg-turbo (libjpeg API).

The entry point ``ffcvx.decoders: turbojpeg`` loads :data:`backend`. Its
native function ``decode_region`` decodes only a rectangle of a JPEG, at the
smallest DCT scale that still covers the requested output size, and
``decode_region_gray`` does the same with one byte per pixel; see
``spec/backends.md`` and ``DEVELOPERS.md`` ("Decoder backends") in ffcvx.

Two more extension modules, ``ffcvx_turbojpeg._libjpeg_write``
(``decode_shrunk``) and ``ffcvx_turbojpeg._libjpeg_encode``
(``encode_jpeg``), are the dataset writer's codec, which
``ffcvx.fields.image_codecs`` imports when it is there; they are no part of
the decoder backend object.

The extension module is imported lazily, so that ``available()`` can report
a missing or broken build instead of failing at entry-point load time.
"""

__all__ = ["backend", "TurboJPEGBackend"]

_MODULE = "ffcvx_turbojpeg._libjpeg"
#: The Python entry points of the same decoder (decode_region_py).
_PY_MODULE = "ffcvx_turbojpeg._libjpeg_py"
_FUNCTIONS = ("decode_region", "decode_region_gray")


class TurboJPEGBackend:
    """The backend object registered under ``ffcvx.decoders``.

    Attributes
    ----------
    name : str
        ``"turbojpeg"``.
    formats : frozenset of str
        ``{"jpeg"}``.
    supports_crop : bool
        True: ``decode_region`` decodes only the requested rectangle.
    supports_scale : bool
        True: it decodes at 1/8, 1/4, 1/2 or full scale.
    supports_gray : bool
        True: ``function_address("decode_region_gray")`` decodes one channel
        (libjpeg's grayscale output; BKD-025, BKD-026).
    device : str
        ``"cpu"``.
    kind : str
        ``"native"``: a per-sample C function called from compiled code
        without the GIL.
    """

    name = "turbojpeg"
    formats = frozenset({"jpeg"})
    supports_crop = True
    supports_scale = True
    supports_gray = True
    device = "cpu"
    kind = "native"

    def _module(self, name=_MODULE):
        import importlib
        return importlib.import_module(name)

    def available(self):
        """Whether the backend can run here.

        Returns
        -------
        ok : bool
            True when the compiled extension imports (libjpeg is loadable).
        reason : str
            Empty when ``ok``; otherwise what failed and how to fix it.
        """
        try:
            self._module()
        except ImportError as exc:
            return False, (f"{_MODULE} cannot be imported ({exc}); install libjpeg-turbo "
                           "(apt-get install libjpeg62-turbo-dev) and rebuild ffcvx-turbojpeg")
        return True, ""

    def function_address(self, name):
        """Address of an exported C function, for ``ctypes.CFUNCTYPE``.

        Parameters
        ----------
        name : str
            ``"decode_region"`` or ``"decode_region_gray"`` (BKD-026: the
            same signature, one byte per pixel), whose C signature is::

                int decode_region(const uint8_t *src, int64_t src_len,
                                  int64_t crop_y, int64_t crop_x,
                                  int64_t crop_h, int64_t crop_w,
                                  int64_t target_h, int64_t target_w,
                                  uint8_t *out, int64_t out_capacity,
                                  int64_t *out_hw);

        Returns
        -------
        int
            The function's address in this process.

        Raises
        ------
        KeyError
            If ``name`` is not a function of this backend.
        ImportError
            If the extension is not built.
        """
        if name not in _FUNCTIONS:
            raise KeyError(f"turbojpeg backend has no function {name!r}; "
                           f"it exports {', '.join(_FUNCTIONS)}")
        self._module()
        from numba.extending import get_cython_function_address
        return get_cython_function_address(_MODULE, name)

    def decode_region_py(self, data, crop=None, target=None, gray=False):
        """Decode a rectangle of a JPEG from Python.

        Parameters
        ----------
        data : bytes-like or ndarray of uint8, shape (n,)
            The complete JPEG file.
        crop : tuple of 4 int, optional
            ``(y, x, h, w)`` in full-resolution pixels; default the whole image.
        target : tuple of 2 int, optional
            ``(target_h, target_w)``: decode at the smallest DCT scale k/8
            (k in 1, 2, 4, 8) at which the crop is at least this big;
            default full scale.
        gray : bool, optional
            Decode one channel, the pixels of ``decode_region_gray``
            (BKD-026; an ffcvx convenience, not in BKD-030).

        Returns
        -------
        ndarray of uint8, shape (h, w, 3), or (h, w) with ``gray``
            Packed RGB pixels (grayscale JPEGs are expanded to RGB), or one
            channel.

        Raises
        ------
        ffcvx.errors.DecodeError
            Corrupt, truncated or unsupported (CMYK) data, with libjpeg's message.
        ValueError
            The crop is not inside the image or has a non-positive size.
        """
        return self._module(_PY_MODULE).decode_region_py(data, crop, target, gray)

    def __repr__(self):
        return "<ffcvx decoder backend 'turbojpeg' (libjpeg-turbo, crop + DCT scale)>"


backend = TurboJPEGBackend()
