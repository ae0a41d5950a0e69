"""Transports: thin drivers between the network and :mod:`rtvc.session`.

``ws``: the rtvc.v1 WebSocket. ``webrtc`` (signaling), ``peer`` (one peer connection per session) and
``tracks`` (bounded input reader, clock-paced output track): WebRTC over aiortc.
Nothing in rtvc.session, rtvc.engine or rtvc.pipeline imports a transport.
"""
