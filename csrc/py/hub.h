/*
 * hub.h -- the C half of the cooperative layer: the hub's switch and wait,
 * the Waiter, and sleep().  stolon/hub.py builds the Hub class on
 * stl_hubbase_type; these are the paths every wait and wake-up takes, so
 * none of them runs Python code unless the user overrode a hook.
 *
 * A wake-up: the loop fires a watcher whose C callback (stl__waiter_ccb)
 * switches straight into the parked greenlet; sleep(0) queues a C entry on
 * the loop's callback FIFO that does the same.  No Python frame in between.
 */
#ifndef STL_PY_HUB_H
#define STL_PY_HUB_H

#include "greenlet.h"
#include "loop.h"

typedef struct stl_waiter {
    PyObject_HEAD
    PyObject *hub;          /* strong */
    PyObject *greenlet;     /* strong or NULL: who waits */
    PyObject *value;        /* strong or NULL */
    PyObject *exc;          /* NULL: nothing yet; Py_None: value; tuple: throw args */
} stl_waiter;

extern PyTypeObject stl_waiter_type;
extern PyTypeObject stl_hubbase_type;

/* Registers Waiter, HubBase and the hub functions on stolon._core. */
int stl_hub_types_ready(PyObject *module);

/* The calling thread's hub (new reference), creating it through
 * stolon.hub.get_hub() if there is none yet; NULL with an exception. */
PyObject *stl_hub_get(void);

/* Switches the current greenlet to hub (switch_out hook honoured); returns
 * what the greenlet is resumed with. */
PyObject *stl_hub_switch(PyObject *hub);

/* hub.wait(watcher): park until the watcher fires (it is stopped after);
 * None or NULL with an exception. */
PyObject *stl_hub_wait(PyObject *hub, PyObject *watcher);

/* Raises stolon.exceptions.<name>(message from fmt); returns -1. */
int stl_raise_stolon_error(const char *name, const char *fmt, ...);

/* glet.switch(value): the C switch unless glet's class overrides switch(). */
PyObject *stl_greenlet_resume(PyObject *glet, PyObject *value);

/* A new waiter of hub; NULL with an exception. */
stl_waiter *stl_waiter_new(PyObject *hub);
/* switch(value): wake the waiter's greenlet (or store); 0 or -1. */
int stl_waiter_switch(stl_waiter *w, PyObject *value);
/* get(): the stored outcome, or park in the hub until one arrives. */
PyObject *stl_waiter_get(stl_waiter *w);

/* --- linkable.c: the C notifier of stolon._abstract_linkable --- */
int stl_linkable_ready(PyObject *module);

/* --- sockio.c: cooperative recv/send on a non-blocking fd --- */
int stl_sockio_ready(PyObject *module);
/* _core.sock_recv/recv_into/send/sendall: (fd, ..., flags, hub, watcher) fastcall. */
PyObject *stl_sock_recv(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *stl_sock_recv_into(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *stl_sock_send(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *stl_sock_sendall(PyObject *m, PyObject *const *args, Py_ssize_t nargs);

/* --- sockmethods.c: those four as methods of stolon.socket.socket --- */
int stl_sockmethods_ready(PyObject *module);

/* --- loop_callbacks.c: a C entry on the run_callback FIFO --- */
typedef int (*stl_pycallback_cfn)(PyObject *obj);
/* Queues fn(obj) (obj strong while queued); NULL with an exception. */
stl_pycallback *stl_pyloop_run_callback_c(stl_pyloop *pl, stl_pycallback_cfn fn, PyObject *obj);

#endif /* STL_PY_HUB_H */
