/*
 * sockmethods.c -- recv, recv_into, send and sendall of stolon.socket.socket as
 * C methods.
 *
 * The Python methods of stolon.socket only pick a path: in blocking mode (no
 * timeout, no MSG_DONTWAIT, an open fd, the io watcher made) they hand
 * everything to the sock_* functions of sockio.c.  A request/response server
 * calls two of them per request, and their Python frames were a fifth of the
 * user CPU it spent per request.  install_socket_methods(cls) replaces them
 * with method descriptors that take the same decision in C, reading the
 * instance's slots at the offsets of cls's member descriptors, and call the
 * Python method (kept as _py_<name>) for everything else: other modes,
 * argument errors, a watcher not made yet.  So every behaviour and every
 * error message stays the Python method's own.
 */
#include "hub.h"

#include <structmember.h>
#include <sys/socket.h>

typedef PyObject *(*stl_sockio_fn)(PyObject *, PyObject *const *, Py_ssize_t);

typedef struct {
    const char *name;
    Py_ssize_t max_args;        /* positional arguments the method takes */
    Py_ssize_t flags_at;        /* where flags is in them; earlier ones are passed on */
    int write;                  /* waits on _write_event (else _read_event) */
    stl_sockio_fn impl;         /* sockio.c: (fd, ..., flags, hub, watcher) */
    PyObject *py_name;          /* "_py_<name>", the Python method */
} stl_sockmethod;

enum { STL_SM_RECV, STL_SM_RECV_INTO, STL_SM_SEND, STL_SM_SENDALL, STL_SM_COUNT };

static stl_sockmethod stl__methods[STL_SM_COUNT] = {
    {"recv", 2, 1, 0, stl_sock_recv, NULL},
    {"recv_into", 3, 2, 0, stl_sock_recv_into, NULL},
    {"send", 2, 1, 1, stl_sock_send, NULL},
    {"sendall", 2, 1, 1, stl_sock_sendall, NULL},
};

/* The instance layout of the installed class; off_timeout < 0: not installed. */
static Py_ssize_t off_timeout = -1, off_hub, off_read, off_write;
static PyObject *stl__fileno;   /* _socket.socket.fileno, a method descriptor */
static PyObject *stl__zero;

#define STL_SLOT(self, off) (*(PyObject **)((char *)(self) + (off)))

/* The Python method, for every case the C path does not take. */
static PyObject *stl__slow(stl_sockmethod *m, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    if (total > 3) {
        PyObject *bound = PyObject_GetAttr(self, m->py_name);
        PyObject *r = bound ? PyObject_Vectorcall(bound, args, (size_t)nargs, kwnames) : NULL;
        Py_XDECREF(bound);
        return r;
    }
    PyObject *stack[4];
    stack[0] = self;
    for (Py_ssize_t i = 0; i < total; i++)
        stack[i + 1] = args[i];
    return PyObject_VectorcallMethod(m->py_name, stack, (size_t)(nargs + 1), kwnames);
}

static PyObject *stl__method(stl_sockmethod *m, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    if (nargs < 1 || nargs > m->max_args || off_timeout < 0 || (kwnames && PyTuple_GET_SIZE(kwnames)))
        return stl__slow(m, self, args, nargs, kwnames);
    PyObject *watcher = STL_SLOT(self, m->write ? off_write : off_read);
    PyObject *hub = STL_SLOT(self, off_hub);
    if (STL_SLOT(self, off_timeout) != Py_None || watcher == NULL || watcher == Py_None || hub == NULL)
        return stl__slow(m, self, args, nargs, NULL);
    PyObject *flags = nargs > m->flags_at ? args[m->flags_at] : stl__zero;
    if (!PyLong_CheckExact(flags))
        return stl__slow(m, self, args, nargs, NULL);
    int overflow = 0;
    long value = PyLong_AsLongAndOverflow(flags, &overflow);
    if (overflow || (value & MSG_DONTWAIT))
        return stl__slow(m, self, args, nargs, NULL);
    PyObject *fd = PyObject_Vectorcall(stl__fileno, &self, 1, NULL);
    if (fd == NULL)
        return NULL;
    long fdv = PyLong_AsLong(fd);
    if (fdv < 0) {
        Py_DECREF(fd);
        if (PyErr_Occurred())
            return NULL;
        return stl__slow(m, self, args, nargs, NULL);
    }
    /* sockio's argument order: fd, the leading arguments (missing ones are 0, as
     * the Python defaults), flags, hub, watcher */
    PyObject *call[7];
    Py_ssize_t n = 0;
    call[n++] = fd;
    for (Py_ssize_t i = 0; i < m->flags_at; i++)
        call[n++] = i < nargs ? args[i] : stl__zero;
    call[n++] = flags;
    call[n++] = hub;
    call[n++] = watcher;
    /* The slots lend them: the call may park, and another greenlet may meanwhile
     * replace the socket's hub or drop its watcher; a vectorcall's caller owns
     * its arguments, so this one does too. */
    Py_INCREF(hub);
    Py_INCREF(watcher);
    PyObject *r = m->impl(NULL, call, n);
    Py_DECREF(watcher);
    Py_DECREF(hub);
    Py_DECREF(fd);
    return r;
}

static PyObject *m_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return stl__method(&stl__methods[STL_SM_RECV], self, args, nargs, kwnames);
}

static PyObject *m_recv_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return stl__method(&stl__methods[STL_SM_RECV_INTO], self, args, nargs, kwnames);
}

static PyObject *m_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return stl__method(&stl__methods[STL_SM_SEND], self, args, nargs, kwnames);
}

static PyObject *m_sendall(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return stl__method(&stl__methods[STL_SM_SENDALL], self, args, nargs, kwnames);
}

static PyMethodDef stl__defs[STL_SM_COUNT] = {
    {"recv", (PyCFunction)(void (*)(void))m_recv, METH_FASTCALL | METH_KEYWORDS,
     "recv(bufsize[, flags]) -> bytes; blocks only the calling greenlet."},
    {"recv_into", (PyCFunction)(void (*)(void))m_recv_into, METH_FASTCALL | METH_KEYWORDS,
     "recv_into(buffer[, nbytes[, flags]]) -> count; blocks only the calling greenlet."},
    {"send", (PyCFunction)(void (*)(void))m_send, METH_FASTCALL | METH_KEYWORDS,
     "send(data[, flags]) -> count; blocks only the calling greenlet."},
    {"sendall", (PyCFunction)(void (*)(void))m_sendall, METH_FASTCALL | METH_KEYWORDS,
     "sendall(data[, flags]); blocks only the calling greenlet."},
};

/* The offset of cls's object slot `name` (a member descriptor of cls itself), or -1. */
static Py_ssize_t stl__slot_offset(PyTypeObject *cls, const char *name)
{
    PyObject *d = PyDict_GetItemString(cls->tp_dict, name);   /* borrowed */
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type))
        return -1;
    PyMemberDef *member = ((PyMemberDescrObject *)d)->d_member;
#ifdef Py_T_OBJECT_EX
    int object_ex = member->type == Py_T_OBJECT_EX;
#else
    int object_ex = member->type == T_OBJECT_EX;
#endif
    return object_ex && !(member->flags & READONLY) ? member->offset : -1;
}

/* install_socket_methods(cls) -> bool: False (and nothing changed) when cls does
 * not have the layout this file reads. */
static PyObject *mod_install_socket_methods(PyObject *mod, PyObject *cls_obj)
{
    if (!PyType_Check(cls_obj)) {
        PyErr_SetString(PyExc_TypeError, "install_socket_methods() needs a class");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)cls_obj;
    Py_ssize_t t = stl__slot_offset(cls, "timeout"), h = stl__slot_offset(cls, "hub"),
               r = stl__slot_offset(cls, "_read_event"), w = stl__slot_offset(cls, "_write_event");
    if (t < 0 || h < 0 || r < 0 || w < 0)
        Py_RETURN_FALSE;
    /* one layout serves every installed class: a class whose slots lie elsewhere
     * (not a reload of stolon.socket) would move them under the first one's methods */
    if (off_timeout >= 0 && (t != off_timeout || h != off_hub || r != off_read || w != off_write))
        Py_RETURN_FALSE;
    PyObject *fileno = PyObject_GetAttrString(cls_obj, "fileno");
    if (fileno == NULL)
        return NULL;
    if (!Py_IS_TYPE(fileno, &PyMethodDescr_Type)) {    /* a Python fileno(): not the stdlib's */
        Py_DECREF(fileno);
        Py_RETURN_FALSE;
    }
    for (int i = 0; i < STL_SM_COUNT; i++) {
        stl_sockmethod *m = &stl__methods[i];
        PyObject *py = PyObject_GetAttrString(cls_obj, m->name);
        PyObject *descr = py ? PyDescr_NewMethod(cls, &stl__defs[i]) : NULL;
        int rc = descr ? PyObject_SetAttr(cls_obj, m->py_name, py) : -1;
        if (rc == 0)
            rc = PyObject_SetAttrString(cls_obj, m->name, descr);
        Py_XDECREF(py);
        Py_XDECREF(descr);
        if (rc < 0) {
            Py_DECREF(fileno);
            return NULL;
        }
    }
    Py_XSETREF(stl__fileno, fileno);
    off_timeout = t;
    off_hub = h;
    off_read = r;
    off_write = w;
    Py_RETURN_TRUE;
}

static PyMethodDef sockmethods_functions[] = {
    {"install_socket_methods", mod_install_socket_methods, METH_O,
     "install_socket_methods(cls): recv, recv_into, send and sendall of stolon.socket.socket "
     "as C methods (the Python ones stay as _py_<name>); False if cls's layout is not the "
     "expected one, or differs from that of a class installed before."},
    {NULL}
};

int stl_sockmethods_ready(PyObject *module)
{
    stl__zero = PyLong_FromLong(0);
    if (stl__zero == NULL)
        return -1;
    for (int i = 0; i < STL_SM_COUNT; i++) {
        stl__methods[i].py_name = PyUnicode_FromFormat("_py_%s", stl__methods[i].name);
        if (stl__methods[i].py_name == NULL)
            return -1;
        PyUnicode_InternInPlace(&stl__methods[i].py_name);
    }
    return PyModule_AddFunctions(module, sockmethods_functions);
}
