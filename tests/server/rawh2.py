"""A raw HTTP/2 client (the ``h2`` library) that can break the rules a gRPC client keeps.

Real clients respect the server's SETTINGS, so they cannot show that the server
enforces them; this one opens more streams than allowed, sends oversized header
blocks and announces messages it never sends.
"""

from __future__ import annotations

import socket
import struct

import h2.config
import h2.connection
import h2.events
import h2.settings


class RawH2:
    """One plain-text HTTP/2 connection to a gRPC server."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []
        self.server_settings: dict[int, int] = {}
        while not any(isinstance(e, h2.events.SettingsAcknowledged) for e in self.events):
            self.receive()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def receive(self) -> bool:
        """Reads once; False when the server closed the connection."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return False
        if not data:
            return False
        for event in self.conn.receive_data(data):
            self.events.append(event)
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.server_settings.update(
                    {int(k): v.new_value for k, v in event.changed_settings.items()})
        self.flush()
        return True

    def ignore_stream_limit(self) -> None:
        """Forget the server's MAX_CONCURRENT_STREAMS, as an abusive client would."""
        self.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 2 ** 31 - 1
        self.conn.remote_settings.acknowledge()

    def start_call(self, path: str, extra: list[tuple[str, str]] = ()) -> int:
        """Sends a gRPC call's headers (no message yet); returns the stream id."""
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [
            (":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "localhost"), ("content-type", "application/grpc"),
            ("te", "trailers"), *extra])
        self.flush()
        return stream

    def announce_message(self, stream: int, length: int, sent: bytes = b"") -> None:
        """Sends a gRPC length prefix claiming ``length`` bytes, then only ``sent``."""
        self.conn.send_data(stream, struct.pack(">BI", 0, length) + sent)
        self.flush()

    def ended(self, stream: int) -> str | None:
        """How the server ended ``stream`` so far: grpc-status, 'reset:<code>', or None."""
        for event in self.events:
            if getattr(event, "stream_id", None) != stream:
                continue
            if isinstance(event, h2.events.StreamReset):
                return f"reset:{event.error_code.name}"
            if isinstance(event, h2.events.TrailersReceived | h2.events.ResponseReceived):
                headers = dict(event.headers)
                if "grpc-status" in headers:
                    return headers["grpc-status"]
        return None

    def wait_ended(self, stream: int) -> str | None:
        """Reads until the server ends ``stream`` or closes or goes quiet (socket timeout)."""
        while self.ended(stream) is None and self.receive():
            pass
        return self.ended(stream)

    def close(self) -> None:
        self.sock.close()
