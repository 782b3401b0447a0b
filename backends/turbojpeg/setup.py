"""Build the libjpeg extension of ffcvx-turbojpeg. Metadata lives in pyproject.toml.

Needs libjpeg-turbo's development files (jpeglib.h, libjpeg.so), e.g.
``apt-get install libjpeg62-turbo-dev`` on Debian.
"""
from Cython.Build import cythonize
from setuptools import Extension, setup

extension = Extension(
    "ffcvx_turbojpeg._libjpeg",
    ["ffcvx_turbojpeg/_libjpeg.pyx"],
    include_dirs=["ffcvx_turbojpeg"],
    libraries=["jpeg"],
    extra_compile_args=["-O3"],
)

setup(ext_modules=cythonize([extension], language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False}))
