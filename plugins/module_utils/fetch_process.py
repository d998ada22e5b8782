# Copyright: ucops.webex maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the pages of Webex lists in a forked child process (used by webex_license_sync).

The pages of a sync are read one after the other, because each page names the next one.
In one process, sending requests and staging pages take turns on the GIL. The child
process sends the requests and passes each page body, undecoded, through a pipe. The
module process decodes and stages it. So the two run on two CPUs, and the child sends the
next request while the parent stages the previous page.

The child is a fork of the module process: it has a copy of the client with its tokens
and counters. Every message it sends carries its counters and tokens, so the parent can
add them to its client even when it stops reading early (a request still in flight then
is not counted). An error in the child is raised in the parent as the same type with the
same message. The child uses a new HTTP session, never a connection of the parent, and it
ends with ``os._exit`` so that nothing of the parent (the inventory connection, buffered
output) is closed or flushed twice.

It is used on Linux only. Windows has no fork, and on macOS the Python documentation calls
fork unsafe because system libraries may start threads.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import pickle
import signal
import struct
import sys
import threading
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Tuple

from ansible_collections.ucops.webex.plugins.module_utils.webex_api import (
    WebexApiError,
    WebexAuthError,
    WebexClient,
    check_ids_are_new,
    check_page_is_new,
)

# A list to read: (object type, API path, query parameters, offset paging).
ListRequest = Tuple[str, str, Mapping[str, Any], bool]

# Bytes of the pipe buffer that the child may fill ahead of the parent (Linux raises a
# pipe's 64 KiB default up to /proc/sys/fs/pipe-max-size, 1 MiB unless changed).
PIPE_BUFFER_BYTES = 1 << 20

# prctl(2) options: the signal sent when the parent ends, and the name of the process.
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
# The process name (15 bytes at most) that ps -o comm and top show for the child.
CHILD_PROCESS_NAME = b"webex-pages"

_FRAME_HEADER = struct.Struct("<Q")
# The object types whose pages the child gives a digest (see page_digest).
DIGESTED_TYPES = ("people",)
# Part of every page digest. Change it when the reading of a page changes, so that no
# digest recorded before matches. SHA-256 is used because it hashed about twice as fast
# as BLAKE2b on the benchmark machine, whose processor has SHA extensions.
PAGE_DIGEST_VERSION = b"ucops.webex people page 1\n"
_ERROR_CLASSES = {cls.__name__: cls for cls in (WebexApiError, WebexAuthError)}


def fetch_process_available(client: Any) -> bool:
    """Return True where pages can be read in a child process with this client."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and isinstance(client, WebexClient)
        and client.owns_session
    )


def page_digest(page: Mapping[str, Any]) -> bytes:
    """Return the first 16 bytes of a SHA-256 digest of an undecoded page.

    The page is one of ``iter_page_contents``. The digest covers the status, the
    Content-Type (which can change how the body decodes) and the body, so two pages with
    the same digest decode to the same items.
    """
    digest = hashlib.sha256(PAGE_DIGEST_VERSION)
    digest.update(f"{page['status']}\n{page['headers'].get('Content-Type', '')}\n".encode())
    digest.update(page["content"])
    return digest.digest()[:16]


class DigestedItems(list):
    """The decoded items of a page, with the ``digest`` of its body (see page_digest)."""

    digest: bytes = b""


class KnownPage:
    """A page whose body has a digest that an earlier sync recorded, passed on undecoded.

    ``record`` is what the caller gave for that digest in ``known_pages``. It has the
    ``ids`` of the page's items, and ``damaged``. A page whose record is damaged is decoded
    and passed on as ``DigestedItems``. ``decode()`` returns the items (as
    ``DigestedItems``) when the caller cannot use the record; it raises what decoding the
    page raises.
    """

    __slots__ = ("digest", "record", "_decode")

    def __init__(self, digest: bytes, record: Any, decode: Callable[[], list]) -> None:
        self.digest = digest
        self.record = record
        self._decode = decode

    def decode(self) -> DigestedItems:
        items = DigestedItems(self._decode())
        items.digest = self.digest
        return items


class PageProcess:
    """A child process reading the pages of ``lists`` in order (see the module docstring).

    ``pages()`` yields ``(object_type, items)`` in the parent. The pages of DIGESTED_TYPES
    come as ``DigestedItems``, or as a ``KnownPage`` when ``known_pages`` has their digest.
    ``stop()`` must be called in
    every case, normally in a ``finally`` block: it ends the child if it still runs, waits
    for it and adds the child's request counters and a refreshed token to the client.
    While another thread reads ``pages()``, call ``kill()`` first, then wait for that
    thread, then ``stop()``.
    """

    def __init__(
        self,
        client: WebexClient,
        lists: Sequence[ListRequest],
        known_pages: Optional[Mapping[bytes, Any]] = None,
    ) -> None:
        self._client = client
        self._known_pages: Mapping[bytes, Any] = known_pages or {}
        self._baseline = client.export_state()
        # The child's state as of its last message: every message carries it, so the
        # counters are known even when the parent stops reading early.
        self._state = self._baseline
        self._lock = threading.Lock()
        self._stopped = False
        parent_pid = os.getpid()
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
            _run_child(client, lists, write_fd, parent_pid)
        self.pid = pid
        self._pid: Optional[int] = pid  # None once waited for
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "rb")

    def pages(self) -> Iterator[Tuple[str, Any]]:
        """Yield ``(object_type, items)`` for each page the child read, in order.

        Raises the error that ended the child's reading, as the same type and message as
        in this process, or a WebexApiError when the child ended without finishing.
        """
        previous_ids: dict = {}
        while True:
            message = self._receive()
            kind = message[0]
            if kind == "page":
                _kind, object_type, page, _state = message
                previous = previous_ids.get(object_type, ())
                digest = page.get("digest")
                record = self._known_pages.get(digest) if digest is not None else None
                ids = tuple(record.ids) if record is not None else ()
                if record is not None and not record.damaged:
                    previous_ids[object_type] = check_ids_are_new(
                        previous, ids, page["url"], page["page"]
                    )
                    yield object_type, KnownPage(digest, record, self._decoder(page))
                    continue
                items = self._client.read_page_content(page)
                previous_ids[object_type] = check_page_is_new(
                    previous, items, page["url"], page["page"]
                )
                if digest is not None:
                    items = DigestedItems(items)
                    items.digest = digest
                yield object_type, items
            elif kind == "end":
                return
            elif kind == "error":
                _kind, class_name, attributes, _state = message
                raise _ERROR_CLASSES[class_name](**attributes)
            elif kind == "raise":
                raise pickle.loads(message[1])
            else:
                raise WebexApiError(
                    f"reading the pages failed in the fetch process: {message[1]}. Run the sync "
                    "again, and report this message if it repeats"
                )

    def _decoder(self, page: Mapping[str, Any]) -> Callable[[], list]:
        return lambda: self._client.read_page_content(page)

    def kill(self) -> None:
        """End the child at once if it still runs (a reader of ``pages()`` then gets EOF)."""
        with self._lock:
            if self._pid is not None:
                try:
                    os.kill(self._pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        """End the child if it still runs, wait for it, close the pipe and hand the child's
        counters and token to the client. Calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self.kill()
        try:
            # Messages still in the pipe carry the state of pages the child had read.
            while self._read_message() is not None:
                pass
        except (OSError, ValueError, pickle.UnpicklingError):
            pass
        self._reap()
        self._reader.close()
        self._client.import_state(self._state, self._baseline)

    def _receive(self) -> tuple:
        message = self._read_message()
        if message is not None:
            return message
        status = self._reap()
        raise WebexApiError(
            "the process reading the pages ended before it finished"
            + (f" ({_describe_status(status)})" if status is not None else "")
            + ". Run the sync again. If this repeats, check the memory and process limits "
            "of the host"
        )

    def _read_message(self) -> Optional[tuple]:
        """Return the next message of the child, or None at the end of the pipe."""
        header = self._reader.read(_FRAME_HEADER.size)
        if len(header) != _FRAME_HEADER.size:
            return None
        (length,) = _FRAME_HEADER.unpack(header)
        payload = self._reader.read(length)
        if len(payload) != length:
            return None
        message = pickle.loads(payload)
        self._state = message[-1]
        return message

    def _reap(self) -> Optional[int]:
        """Wait for the child to end and return its wait status (None if reaped before)."""
        with self._lock:
            pid, self._pid = self._pid, None
        if pid is None:
            return None
        while True:
            try:
                return os.waitpid(pid, 0)[1]
            except ChildProcessError:
                return None
            except InterruptedError:
                continue


def _run_child(
    client: WebexClient, lists: Sequence[ListRequest], write_fd: int, parent_pid: int
) -> None:
    """Read every list and send each page to the parent. Then end the process."""
    try:
        _default_stop_signals()
        _end_with_parent(parent_pid)
        _detach_standard_streams()
        with os.fdopen(write_fd, "wb") as out:
            _serve_lists(client, lists, out)
    finally:
        os._exit(0)


def _default_stop_signals() -> None:
    """Give the child the default action of SIGTERM, SIGINT and SIGHUP.

    The fork inherits the module process's handlers, which turn these signals into a
    recorded failure. In the child they would report a signal that the module process never
    received. A signal that the caller ignores stays ignored.
    """
    for name in ("SIGTERM", "SIGINT", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) != signal.SIG_IGN:
            signal.signal(number, signal.SIG_DFL)


def _end_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when its parent ends, and name it in ps and top.

    Without this, a child that waits out a long Retry-After, or a slow response, would
    outlive a killed module process until its next write to the pipe failed.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(CHILD_PROCESS_NAME), 0, 0, 0)
    except (AttributeError, OSError):
        pass  # the write to the closed pipe still ends the child
    if os.getppid() != parent_pid:  # the parent ended before the request took effect
        os._exit(0)


def _serve_lists(client: WebexClient, lists: Sequence[ListRequest], out: Any) -> None:
    """Send every page of ``lists``, then an end or error message; each message ends
    with the client's state (see ``WebexClient.export_state``)."""
    try:
        client.renew_session()
        for object_type, path, params, offset_paging in lists:
            for page in client.iter_page_contents(path, params, offset_paging=offset_paging):
                if object_type in DIGESTED_TYPES:
                    page["digest"] = page_digest(page)
                _send(out, ("page", object_type, page, client.export_state()))
        message: tuple = ("end", client.export_state())
    except BrokenPipeError:
        return  # the parent stopped reading
    except WebexApiError as error:
        message = ("error", type(error).__name__, _error_attributes(error), client.export_state())
    except BaseException as error:  # reported to the parent, which raises it
        message = ("raise", _pickled_error(error), client.export_state())
        if message[1] is None:
            message = ("crash", f"{type(error).__name__}: {error}", client.export_state())
    try:
        _send(out, message)
    except BrokenPipeError:
        pass


def _pickled_error(error: BaseException) -> Optional[bytes]:
    """Return ``error`` pickled if the parent can rebuild it, else None."""
    try:
        data = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
    except Exception:
        return None
    return data


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
