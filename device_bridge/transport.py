"""Serial transport: the only module that imports pyserial.

Any URL `serial.serial_for_url` understands works: a real port (``/dev/ttyUSB0``, ``COM3``), a pty
slave path (``/dev/pts/7``, what the simulator prints), ``loop://`` and ``socket://host:port``.
"""

from __future__ import annotations

from typing import Protocol

import serial


class LinkError(OSError):
    """The port failed (unplugged USB adapter, closed pty, refused socket)."""


class Port(Protocol):
    """What the station needs from a byte link; `SerialTransport` is the real one."""

    name: str

    def read(self, max_bytes: int) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    def reset_input(self) -> None: ...
    def close(self) -> None: ...


class SerialTransport:
    """A serial port opened with ``serial_for_url``, 8N1, no flow control.

    Parameters
    ----------
    url
        Port name or pyserial URL.
    baud
        Line rate in bits per second.
    read_timeout_s
        How long `read` waits for the first byte; keep it short so timers stay responsive.
    """

    def __init__(self, url: str, *, baud: int = 115_200, read_timeout_s: float = 0.005) -> None:
        self.name = url
        try:
            self._serial = serial.serial_for_url(
                url,
                baudrate=baud,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=read_timeout_s,
                write_timeout=None,
                xonxoff=False,
                rtscts=False,
                dsrdtr=False,
            )
        except (serial.SerialException, ValueError) as exc:
            raise LinkError(f"cannot open {url}: {exc}") from exc

    def read(self, max_bytes: int = 4096) -> bytes:
        """Whatever has arrived (waits up to the read timeout for the first byte)."""
        try:
            waiting = self._serial.in_waiting
            data: bytes = self._serial.read(max(1, min(max_bytes, waiting)) if waiting else 1)
            if data and self._serial.in_waiting:
                data += self._serial.read(min(max_bytes, self._serial.in_waiting))
            return data
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.name}: read failed: {exc}") from exc

    def write(self, data: bytes) -> None:
        """Put bytes on the line (blocks while the driver's buffer is full)."""
        try:
            # No flush(): on a pty tcdrain() waits for the far end to read; write() already blocks
            # while the driver buffer is full, which is all the back-pressure needed.
            self._serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.name}: write failed: {exc}") from exc

    def reset_input(self) -> None:
        """Throw away bytes waiting in the driver (stale frames after a session is lost)."""
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.name}: reset failed: {exc}") from exc

    def close(self) -> None:
        """Close the port."""
        self._serial.close()
