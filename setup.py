"""Build the Cython native core (ffcvx/_ext/*.pyx). Metadata lives in setup.cfg.

An extension may add hand-written C next to its .pyx (``EXTRA_SOURCES``);
its headers go in ``depends`` so that editing them rebuilds it. The AVX2
code in ``resize_kernels_avx2.c`` carries its own target attribute, so no
extra compiler flags are needed.
"""
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

EXT = Path("ffcvx/_ext")

# hand-written C sources and headers per extension module
EXTRA_SOURCES = {"resize": ["resize_kernels.c", "resize_kernels_avx2.c", "resize_weights.c"]}
EXTRA_HEADERS = {"resize": ["resize_kernels.h", "resize_kernels_avx2.h", "resize_weights.h"]}

extensions = [
    Extension(
        f"ffcvx._ext.{path.stem}",
        [str(path)] + [str(EXT / name) for name in EXTRA_SOURCES.get(path.stem, [])],
        depends=[str(EXT / name) for name in EXTRA_HEADERS.get(path.stem, [])],
        include_dirs=[np.get_include(), str(EXT)],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for path in sorted(EXT.glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False}))
