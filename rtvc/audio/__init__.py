"""Audio formats on the wire and streaming sample-rate conversion."""
