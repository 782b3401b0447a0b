"""Build the libjpeg extensions of ffcvx-turbojpeg. Metadata lives in pyproject.toml.

Needs libjpeg-turbo's development files (jpeglib.h, libjpeg.so), e.g.
``apt-get install libjpeg62-turbo-dev`` on Debian.

Four modules, one library: ``_libjpeg`` (the read path's region decoder, for
compiled callers), ``_libjpeg_py`` (its Python entry points),
``_libjpeg_write`` (the dataset writer's shrinking decoder, with the
hand-written area resampler ``area_resize.c``) and ``_libjpeg_encode`` (the
writer's encoder). The three that call libjpeg cimport its
declarations from ``_jpeglib.pxd`` and use the setjmp error handling of
``_errors.h``.
"""
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "ffcvx_turbojpeg._libjpeg",
        ["ffcvx_turbojpeg/_libjpeg.pyx"],
        include_dirs=["ffcvx_turbojpeg"],
        depends=["ffcvx_turbojpeg/_errors.h", "ffcvx_turbojpeg/_jpeglib.pxd",
                 "ffcvx_turbojpeg/_libjpeg.pxd"],
        libraries=["jpeg"],
        extra_compile_args=["-O3"],
    ),
    Extension(
        "ffcvx_turbojpeg._libjpeg_py",
        ["ffcvx_turbojpeg/_libjpeg_py.pyx"],
        depends=["ffcvx_turbojpeg/_libjpeg.pxd"],
        extra_compile_args=["-O3"],
    ),
    Extension(
        "ffcvx_turbojpeg._libjpeg_write",
        ["ffcvx_turbojpeg/_libjpeg_write.pyx", "ffcvx_turbojpeg/area_resize.c"],
        include_dirs=["ffcvx_turbojpeg"],
        depends=["ffcvx_turbojpeg/_errors.h", "ffcvx_turbojpeg/_jpeglib.pxd",
                 "ffcvx_turbojpeg/area_resize.h"],
        libraries=["jpeg", "m"],
        extra_compile_args=["-O3", "-ffp-contract=off"],    # same bytes on every CPU
    ),
    Extension(
        "ffcvx_turbojpeg._libjpeg_encode",
        ["ffcvx_turbojpeg/_libjpeg_encode.pyx"],
        include_dirs=["ffcvx_turbojpeg"],
        depends=["ffcvx_turbojpeg/_errors.h", "ffcvx_turbojpeg/_jpeglib.pxd"],
        libraries=["jpeg"],
        extra_compile_args=["-O3"],
    ),
]

setup(ext_modules=cythonize(extensions, language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False}))
