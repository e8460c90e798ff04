"""knack-notebooks: move Knack app data to S3, Socrata and ArcGIS Online.

Notebooks in ``notebooks/`` are thin; the work happens in this package.
"""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
