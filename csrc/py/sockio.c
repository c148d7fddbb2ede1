/*
 * sockio.c -- cooperative recv/send on a non-blocking fd, for stolon.socket.
 *
 * Each function tries the syscall; when the kernel says EAGAIN it parks the
 * calling greenlet on the socket's io watcher through the hub's C wait
 * (stl_hub_wait: the loop switches straight back into it when the fd is
 * ready) and tries again.  The whole would-block cycle runs without a
 * Python frame and without raising and catching BlockingIOError, which is
 * what a Python-level try/except around socket.recv would cost per EAGAIN.
 *
 * watcher None means the socket is in non-blocking mode (timeout 0.0):
 * EAGAIN raises BlockingIOError, as the stdlib does.  Timeouts are the
 * caller's: a stolon Timeout armed around the call throws into the parked
 * greenlet, and so does hub.cancel_wait when another greenlet closes the
 * socket; either exception leaves these functions through stl_hub_wait.
 */
#include "hub.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

/* One greenlet per direction: a second waiter would steal the first one's
 * wake-up, so it gets gevent's error instead. */
static int stl__check_unused(PyObject *watcher)
{
    if (!PyObject_TypeCheck(watcher, &stl_pywatcher_type) || !((stl_pywatcher *)watcher)->cw->active)
        return 0;
    PyObject *cb = ((stl_pywatcher *)watcher)->callback;
    return stl_raise_stolon_error("ConcurrentObjectUseError", "This socket is already used by another greenlet: %R",
                                  cb ? cb : Py_None);
}

/* The common tail of a failed syscall: 1 to wait and retry, -1 to fail. */
static int stl__would_block(PyObject *hub, PyObject *watcher)
{
    int err = errno;
    if (err == EINTR)
        return PyErr_CheckSignals() < 0 ? -1 : 1;
    if ((err != EAGAIN && err != EWOULDBLOCK) || watcher == Py_None) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (stl__check_unused(watcher) < 0)
        return -1;
    PyObject *r = stl_hub_wait(hub, watcher);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 1;
}

static int stl__args(const char *name, Py_ssize_t nargs, Py_ssize_t want, PyObject *const *args, int *fd)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
        return -1;
    }
    *fd = PyLong_AsInt(args[0]);
    if (*fd == -1 && PyErr_Occurred())
        return -1;
    if (*fd < 0) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* The stdlib's "i" (flags) and "n" (sizes) argument conversions, errors included:
 * an exact int takes the direct path; anything else goes through CPython's own
 * converter, which takes __index__ and words its errors per Python version. */
static int stl__flags(PyObject *obj, int *flags)
{
    if (PyLong_CheckExact(obj)) {
        long v = PyLong_AsLong(obj);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (v > INT_MAX || v < INT_MIN) {
            PyErr_SetString(PyExc_OverflowError, v > INT_MAX ? "signed integer is greater than maximum"
                                                             : "signed integer is less than minimum");
            return -1;
        }
        *flags = (int)v;
        return 0;
    }
    return PyArg_Parse(obj, "i", flags) ? 0 : -1;
}

static int stl__size(PyObject *obj, Py_ssize_t *size)
{
    if (PyLong_CheckExact(obj)) {
        *size = PyLong_AsSsize_t(obj);
        return *size == -1 && PyErr_Occurred() ? -1 : 0;
    }
    return PyArg_Parse(obj, "n", size) ? 0 : -1;
}

/* A recv size (never negative, the stdlib's message) and flags, converted in
 * the stdlib's order: the first bad argument is the one reported. */
static int stl__size_and_flags(PyObject *size_obj, PyObject *flags_obj, const char *what,
                               Py_ssize_t *size, int *flags)
{
    if (stl__size(size_obj, size) < 0 || stl__flags(flags_obj, flags) < 0)
        return -1;
    if (*size < 0) {
        PyErr_Format(PyExc_ValueError, "negative buffersize in %s", what);
        return -1;
    }
    return 0;
}

/* A short read from a stream socket left its kernel buffer empty, so the next
 * blocking read would almost always fail with EAGAIN: it parks first instead and
 * reads once the loop reports the fd ready.  In a request/response exchange that
 * saves a third of the syscalls (recv, send, and the recv that says EAGAIN).  Level-
 * triggered readiness makes it safe: data that came in the meantime wakes the
 * waiter on the loop's next poll.  Datagram sockets keep reading first (a short
 * datagram says nothing about the queue behind it). */
static stl_pywatcher *stl__read_hint(int fd, PyObject *watcher)
{
    if (!PyObject_TypeCheck(watcher, &stl_pywatcher_type))
        return NULL;
    stl_pywatcher *w = (stl_pywatcher *)watcher;
    if (w->sock_kind == 0) {
        int type = 0;
        socklen_t len = sizeof type;
        w->sock_kind = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM ? 1 : 2;
    }
    return w->sock_kind == 1 ? w : NULL;
}

/* Waits for readability first when the hint says the buffer is empty: 0, or -1. */
static int stl__wait_if_drained(stl_pywatcher *hint, PyObject *hub)
{
    if (hint == NULL || !hint->drained)
        return 0;
    hint->drained = 0;
    if (stl__check_unused((PyObject *)hint) < 0)
        return -1;
    PyObject *r = stl_hub_wait(hub, (PyObject *)hint);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Records what a read of n bytes out of a wanted says about the buffer. */
static void stl__note_read(stl_pywatcher *hint, ssize_t n, Py_ssize_t wanted, int flags)
{
    if (hint != NULL)
        hint->drained = n > 0 && n < wanted && !(flags & MSG_PEEK);
}

/* The size of each thread's scratch buffer for short reads (thread-local, so it
 * is freed with its thread; a read never waits while it holds data there). */
#define STL_RECV_SCRATCH 65536
static _Thread_local char stl__scratch[STL_RECV_SCRATCH];

/* The bytes of a read of n into a size-byte buffer.  With MSG_TRUNC a datagram
 * socket answers the datagram's whole length, more than was written: the
 * stdlib then returns that many bytes, the tail uninitialized; here the tail
 * is zeros, so that the length still tells and no stale memory leaks out. */
static PyObject *stl__read_result(const char *buf, ssize_t n, Py_ssize_t size)
{
    if (n <= size)
        return PyBytes_FromStringAndSize(buf, n);
    PyObject *r = PyBytes_FromStringAndSize(NULL, n);
    if (r != NULL) {
        memcpy(PyBytes_AS_STRING(r), buf, (size_t)size);
        memset(PyBytes_AS_STRING(r) + size, 0, (size_t)(n - size));
    }
    return r;
}

static PyObject *stl__recv_via_scratch(int fd, Py_ssize_t size, int flags, PyObject *hub, stl_pywatcher *hint)
{
    for (;;) {
        ssize_t n = recv(fd, stl__scratch, (size_t)size, flags);
        if (n >= 0) {
            stl__note_read(hint, n, size, flags);
            return stl__read_result(stl__scratch, n, size);
        }
        if (stl__would_block(hub, (PyObject *)hint) < 0)
            return NULL;
    }
}

/* sock_recv(fd, bufsize, flags, hub, watcher) -> bytes */
PyObject *stl_sock_recv(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, flags;
    Py_ssize_t size;
    if (stl__args("sock_recv", nargs, 5, args, &fd) < 0
        || stl__size_and_flags(args[1], args[2], "recv", &size, &flags) < 0)
        return NULL;
    if (size == 0)      /* the stdlib asks the kernel nothing: never waits */
        return PyBytes_FromStringAndSize(NULL, 0);
    stl_pywatcher *hint = stl__read_hint(fd, args[4]);
    /* after a short read the next one is most likely short too (a request, an
     * answer): it goes through the thread's scratch buffer and the result is
     * allocated at its size, instead of allocating bufsize bytes and shrinking */
    int via_scratch = hint != NULL && hint->drained && size <= STL_RECV_SCRATCH;
    if (stl__wait_if_drained(hint, args[3]) < 0)
        return NULL;
    if (via_scratch)
        return stl__recv_via_scratch(fd, size, flags, args[3], hint);
    for (;;) {
        /* allocated per try, never held across a wait: 10,000 parked readers must
         * not keep 10,000 empty buffers of bufsize bytes */
        PyObject *buf = PyBytes_FromStringAndSize(NULL, size);
        if (buf == NULL)
            return NULL;
        ssize_t n = recv(fd, PyBytes_AS_STRING(buf), (size_t)size, flags);
        if (n > size) {
            PyObject *r = stl__read_result(PyBytes_AS_STRING(buf), n, size);
            Py_DECREF(buf);
            return r;
        }
        if (n >= 0) {
            stl__note_read(hint, n, size, flags);
            if (n != size && _PyBytes_Resize(&buf, n) < 0)
                return NULL;
            return buf;
        }
        int err = errno;
        Py_DECREF(buf);
        errno = err;
        if (stl__would_block(args[3], args[4]) < 0)
            return NULL;
    }
}

/* sock_recv_into(fd, buffer, nbytes, flags, hub, watcher) -> int */
PyObject *stl_sock_recv_into(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, flags;
    Py_ssize_t nbytes;
    if (stl__args("sock_recv_into", nargs, 6, args, &fd) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_WRITABLE) < 0) {
        /* the stdlib's words for a read-only or non-buffer argument */
        PyErr_Format(PyExc_TypeError, "recv_into() argument 1 must be read-write bytes-like object, not %.100s",
                     args[1] == Py_None ? "None" : Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    if (stl__size_and_flags(args[2], args[3], "recv_into", &nbytes, &flags) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (nbytes == 0)
        nbytes = view.len;
    if (nbytes > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "buffer too small for requested bytes");
        return NULL;
    }
    if (nbytes == 0) {  /* an empty buffer: as the stdlib, no read and no wait */
        PyBuffer_Release(&view);
        return PyLong_FromLong(0);
    }
    PyObject *result = NULL;
    stl_pywatcher *hint = stl__read_hint(fd, args[5]);
    if (stl__wait_if_drained(hint, args[4]) == 0) {
        for (;;) {
            ssize_t n = recv(fd, view.buf, (size_t)nbytes, flags);
            if (n >= 0) {
                stl__note_read(hint, n, nbytes, flags);
                result = PyLong_FromSsize_t(n);
                break;
            }
            if (stl__would_block(args[4], args[5]) < 0)
                break;
        }
    }
    PyBuffer_Release(&view);
    return result;
}

/* send(2) until it takes something; returns the count, or -1. */
static Py_ssize_t stl__send_some(int fd, const char *p, Py_ssize_t len, int flags, PyObject *hub, PyObject *watcher)
{
    for (;;) {
        ssize_t n = send(fd, p, (size_t)len, flags);
        if (n >= 0)
            return n;
        if (stl__would_block(hub, watcher) < 0)
            return -1;
    }
}

/* (fd, data, flags, hub, watcher): the fd, the flags and data's bytes (to release). */
static int stl__send_args(const char *name, PyObject *const *args, Py_ssize_t nargs, int *fd, int *flags,
                          Py_buffer *view)
{
    if (stl__args(name, nargs, 5, args, fd) < 0 || PyObject_GetBuffer(args[1], view, PyBUF_SIMPLE) < 0)
        return -1;
    if (stl__flags(args[2], flags) < 0) {
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* sock_send(fd, data, flags, hub, watcher) -> int */
PyObject *stl_sock_send(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, flags;
    Py_buffer view;
    if (stl__send_args("sock_send", args, nargs, &fd, &flags, &view) < 0)
        return NULL;
    Py_ssize_t n = stl__send_some(fd, view.buf, view.len, flags, args[3], args[4]);
    PyBuffer_Release(&view);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

/* sock_sendall(fd, data, flags, hub, watcher) -> None; waits as often as needed. */
PyObject *stl_sock_sendall(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, flags;
    Py_buffer view;
    if (stl__send_args("sock_sendall", args, nargs, &fd, &flags, &view) < 0)
        return NULL;
    const char *p = view.buf;
    Py_ssize_t left = view.len, n = 0;
    while (left > 0) {
        n = stl__send_some(fd, p, left, flags, args[3], args[4]);
        if (n < 0)
            break;
        p += n;
        left -= n;
    }
    PyBuffer_Release(&view);
    if (n < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef sockio_functions[] = {
    {"sock_recv", (PyCFunction)(void (*)(void))stl_sock_recv, METH_FASTCALL,
     "sock_recv(fd, bufsize, flags, hub, watcher): recv(2), parking on watcher while it would block."},
    {"sock_recv_into", (PyCFunction)(void (*)(void))stl_sock_recv_into, METH_FASTCALL,
     "sock_recv_into(fd, buffer, nbytes, flags, hub, watcher): recv(2) into a writable buffer."},
    {"sock_send", (PyCFunction)(void (*)(void))stl_sock_send, METH_FASTCALL,
     "sock_send(fd, data, flags, hub, watcher): send(2) once it can take some bytes; the count."},
    {"sock_sendall", (PyCFunction)(void (*)(void))stl_sock_sendall, METH_FASTCALL,
     "sock_sendall(fd, data, flags, hub, watcher): send(2) until every byte is taken."},
    {NULL}
};

int stl_sockio_ready(PyObject *module)
{
    return PyModule_AddFunctions(module, sockio_functions);
}
