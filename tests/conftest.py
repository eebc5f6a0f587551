"""Suite-wide setup."""

from stratowatch._native import before_eccodes

# Tests import eccodes directly (GRIB fixtures); native libraries that clash with its bundled
# copies must be loaded first, as the package itself does (see stratowatch._native).
before_eccodes()
