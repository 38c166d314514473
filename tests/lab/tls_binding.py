# SPDX-License-Identifier: LGPL-2.1-or-later
"""Channel bindings of a server-side ssl.SSLSocket, for the lab EST server.

  TLS 1.2: tls-unique (RFC 5929), which Python exposes directly.
  TLS 1.3: tls-exporter (RFC 9266): the TLS exporter with the label
           "EXPORTER-Channel-Binding", an empty context, 32 bytes.

Python's ssl module has no exporter, so this calls OpenSSL's
SSL_export_keying_material() through ctypes on the SSL * that CPython keeps in
its _ssl._SSLSocket object (PyObject_HEAD, then PyObject *Socket, then SSL *ssl;
Modules/_ssl.c). That layout is an implementation detail, so the pointer is
checked before use: SSL_get_fd() must give the socket's descriptor and
SSL_version() the negotiated version; otherwise this raises rather than guess.
Test tooling only; never installed.
"""

import ctypes
import ctypes.util

EXPORTER_LABEL = b"EXPORTER-Channel-Binding"
EXPORTER_LEN = 32
TLS1_2_VERSION = 0x0303
TLS1_3_VERSION = 0x0304


class BindingError(Exception):
    """The binding of this connection cannot be computed."""


def _libssl():
    name = ctypes.util.find_library("ssl") or "libssl.so.3"
    lib = ctypes.CDLL(name)
    lib.SSL_get_fd.argtypes = [ctypes.c_void_p]
    lib.SSL_get_fd.restype = ctypes.c_int
    lib.SSL_version.argtypes = [ctypes.c_void_p]
    lib.SSL_version.restype = ctypes.c_int
    lib.SSL_export_keying_material.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    lib.SSL_export_keying_material.restype = ctypes.c_int
    return lib


_LIB = None


def _ssl_pointer(sock):
    global _LIB
    if _LIB is None:
        _LIB = _libssl()
    obj = sock._sslobj
    if obj is None:
        raise BindingError("the socket has no TLS session")
    words = ctypes.cast(id(obj), ctypes.POINTER(ctypes.c_void_p))
    ptr = words[3]  # ob_refcnt, ob_type, Socket, ssl
    expected_version = {"TLSv1.2": TLS1_2_VERSION, "TLSv1.3": TLS1_3_VERSION}.get(sock.version())
    if not ptr or _LIB.SSL_get_fd(ptr) != sock.fileno() or _LIB.SSL_version(ptr) != expected_version:
        raise BindingError("cannot locate the OpenSSL session of this socket "
                           "(CPython's _ssl layout differs from the one expected)")
    return ptr


def tls_exporter(sock):
    """RFC 9266 tls-exporter of a TLS 1.3 connection."""
    ptr = _ssl_pointer(sock)
    out = ctypes.create_string_buffer(EXPORTER_LEN)
    if _LIB.SSL_export_keying_material(ptr, out, EXPORTER_LEN, EXPORTER_LABEL, len(EXPORTER_LABEL),
                                       b"", 0, 1) != 1:
        raise BindingError("SSL_export_keying_material failed")
    return out.raw


def channel_binding(sock):
    """(type, value bytes) for this connection: tls-unique under TLS 1.2,
    tls-exporter under TLS 1.3."""
    version = sock.version()
    if version == "TLSv1.2":
        return "tls-unique", sock.get_channel_binding("tls-unique")
    if version == "TLSv1.3":
        return "tls-exporter", tls_exporter(sock)
    raise BindingError("no channel binding is defined here for %s" % version)


__all__ = ["BindingError", "channel_binding", "tls_exporter"]
