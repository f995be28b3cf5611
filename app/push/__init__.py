"""Camera and AI-box push events: parsers, the durable inbox and the SE-box WebSocket client.

Nothing here imports the Tornado web layer except ``sophon_ws`` (a WebSocket *client*). The
HTTP receivers in ``handlers/`` turn a raw body into ``CameraEvent`` objects with the parsers
(``eventinfo``, ``hikvision``, ``sophon``; ``sniff`` picks one for a generic route) and store
them with ``Inbox.put`` before answering 200.
"""
