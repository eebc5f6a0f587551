"""Wind fields from GRIB2, NetCDF, soundings, flights and analytic models."""
