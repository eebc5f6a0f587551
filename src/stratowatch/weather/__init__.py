"""Wind fields from GRIB2, NetCDF, soundings, flights and analytic models."""

from stratowatch.weather.analytic import analytic_field
from stratowatch.weather.errors import WindDomainError, WindFormatError
from stratowatch.weather.grid import WindGrid
from stratowatch.weather.load import load_winds

__all__ = ["WindDomainError", "WindFormatError", "WindGrid", "analytic_field", "load_winds"]
