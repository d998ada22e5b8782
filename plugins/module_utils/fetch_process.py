# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the pages of Webex lists in a forked child process (used by webex_license_sync).

The pages of a sync are read one after the other, because each page names the next one.
In one process, sending requests and staging pages take turns on the GIL. The child
process sends the requests and passes each page body, undecoded, through a pipe; the
module process decodes and stages it. So the two run on two CPUs, and the child sends the
next request while the parent stages the previous page.

The child is a fork of the module process: it has a copy of the client with its tokens
and counters, and hands back the counters, and a token it refreshed, at the end. It uses
a new HTTP session, never a connection of the parent, and it ends with ``os._exit`` so
that nothing of the parent (the inventory connection, buffered output) is closed or
flushed twice. It is used on Linux only. Windows has no fork, and on macOS the Python
documentation calls fork unsafe because system libraries may start threads.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexAuthError,
    WebexClient,
)

# A list to read: (object type, API path, query parameters, offset paging).
ListRequest = Tuple[str, str, Mapping[str, Any], bool]

# Bytes of the pipe buffer that the child may fill ahead of the parent (Linux raises a
# pipe's 64 KiB default up to /proc/sys/fs/pipe-max-size, 1 MiB unless changed).
PIPE_BUFFER_BYTES = 1 << 20

_FRAME_HEADER = struct.Struct("<Q")
_ERROR_CLASSES = {cls.__name__: cls for cls in (WebexApiError, WebexAuthError)}


def fetch_process_available(client: Any) -> bool:
    """Return True where pages can be read in a child process with this client."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and isinstance(client, WebexClient)
        and client.owns_session
    )


class PageProcess:
    """A child process reading the pages of ``lists`` in order; see the module docstring.

    ``pages()`` yields ``(object_type, items)`` in the parent. ``stop()`` ends the child
    if it still runs and must be called in every case, normally in a ``finally`` block.
    """

    def __init__(self, client: WebexClient, lists: Sequence[ListRequest]) -> None:
        self._client = client
        self._baseline = client.export_state()
        read_fd, write_fd = os.pipe()
        try:
            _enlarge_pipe(write_fd)
            pid = os.fork()
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            _run_child(client, lists, write_fd)
        self.pid = pid
        self._pid: Optional[int] = pid  # None once waited for
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "rb")

    def pages(self) -> Iterator[Tuple[str, List[dict]]]:
        """Yield ``(object_type, items)`` for each page the child read, in order.

        Raises the child's WebexApiError, or a WebexApiError when the child ended without
        finishing its lists.
        """
        while True:
            message = self._receive()
            kind = message[0]
            if kind == "page":
                _kind, object_type, page = message
                yield object_type, self._client.read_page_content(page)
            elif kind == "end":
                self._client.import_state(message[1], self._baseline)
                self._reap()
                return
            elif kind == "error":
                _kind, class_name, attributes, state = message
                self._client.import_state(state, self._baseline)
                self._reap()
                raise _ERROR_CLASSES[class_name](**attributes)
            else:
                self._reap()
                raise WebexApiError(f"reading the pages failed in the fetch process: {message[1]}")

    def stop(self) -> None:
        """End the child if it still runs, and close the pipe."""
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()
        self._reader.close()

    def _receive(self) -> tuple:
        header = self._reader.read(_FRAME_HEADER.size)
        if len(header) == _FRAME_HEADER.size:
            (length,) = _FRAME_HEADER.unpack(header)
            payload = self._reader.read(length)
            if len(payload) == length:
                return pickle.loads(payload)
        status = self._reap()
        raise WebexApiError(
            "the process reading the pages ended before it finished"
            + (f" ({_describe_status(status)})" if status is not None else "")
            + ". Run the sync again. If this repeats, check the memory and process limits "
            "of the host"
        )

    def _reap(self) -> Optional[int]:
        """Wait for the child to end and return its wait status (None if reaped before)."""
        if self._pid is None:
            return None
        pid, self._pid = self._pid, None
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except ChildProcessError:
                return None
            except InterruptedError:
                continue


def _run_child(client: WebexClient, lists: Sequence[ListRequest], write_fd: int) -> None:
    """Read every list and send each page to the parent; then end the process."""
    try:
        _detach_standard_streams()
        with os.fdopen(write_fd, "wb") as out:
            _serve_lists(client, lists, out)
    finally:
        os._exit(0)


def _serve_lists(client: WebexClient, lists: Sequence[ListRequest], out: Any) -> None:
    try:
        client.renew_session()
        for object_type, path, params, offset_paging in lists:
            for page in client.iter_page_contents(path, params, offset_paging=offset_paging):
                _send(out, ("page", object_type, page))
        message: tuple = ("end", client.export_state())
    except BrokenPipeError:
        return  # the parent stopped reading
    except WebexApiError as error:
        message = ("error", type(error).__name__, _error_attributes(error), client.export_state())
    except BaseException as error:  # reported to the parent, which raises it
        message = ("crash", f"{type(error).__name__}: {error}")
    try:
        _send(out, message)
    except BrokenPipeError:
        pass


def _send(out: Any, message: tuple) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME_HEADER.pack(len(payload)))
    out.write(payload)
    out.flush()


def _error_attributes(error: WebexApiError) -> dict:
    names = (
        "message", "method", "path", "status", "reason", "tracking_id", "error_codes", "body",
        "hint",
    )
    return {name: getattr(error, name) for name in names}


def _detach_standard_streams() -> None:
    """Point the child's standard streams at /dev/null: the module's result goes to the
    parent's standard output, which must end when the parent ends."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _enlarge_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BUFFER_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # a smaller buffer only makes the child wait for the parent sooner


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by {name}"
    return f"exit status {os.WEXITSTATUS(status)}"
