"""Local stand-ins for the outside services (Knack, Socrata, ArcGIS) and the demo stack.

They speak the services' real HTTP protocols on 127.0.0.1. The product never imports this
package: it reaches the stand-ins over HTTP, exactly as it reaches the real services.
"""
