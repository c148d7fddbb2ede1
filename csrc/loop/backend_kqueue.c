/*
 * backend_kqueue.c -- kqueue (macOS and the BSDs); compiled only where
 * <sys/event.h> exists and the platform is not Linux.
 *
 * kqueue keys its filters by (fd, filter) and removes them when the fd is
 * closed, so epoll's stale-description trap does not exist here; a start
 * after init or set (NEWFD) still re-adds the filters, which is harmless.
 * Changes are batched and handed to the kernel with the next kevent() wait.
 * A change that fails comes back as an EV_ERROR event: for an fd that is
 * bad (EBADF) or of a kind kqueue cannot watch (EINVAL, ENOTSUP, EPERM)
 * its watchers are stopped and get STL_ERROR; a failed delete is ignored.
 * A kqueue is not inherited by a forked child, so the child makes a new one
 * and registers every watched fd again.
 */
#include "loop_int.h"

#ifdef STL__HAVE_KQUEUE

#include <string.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>
#include <fcntl.h>

typedef struct stl__kqueue {
    int kq;
    struct kevent *changes;
    int nchanges, capchanges;
    struct kevent *events;
    int nevents;
} stl__kqueue;

#define STL__KQ(loop) ((stl__kqueue *)(loop)->bstate)

/* A new kqueue, close-on-exec. */
static int stl__kqueue_open(void)
{
    int kq = kqueue();
    if (kq < 0)
        return -errno;
    fcntl(kq, F_SETFD, FD_CLOEXEC);
    return kq;
}

static int stl__kqueue_init(stl_loop *loop)
{
    stl__kqueue *k = stl__realloc(NULL, sizeof *k);
    if (!k)
        return -ENOMEM;
    memset(k, 0, sizeof *k);
    k->nevents = 64;
    k->events = stl__realloc(NULL, (size_t)k->nevents * sizeof *k->events);
    k->kq = stl__kqueue_open();
    if (k->kq < 0 || !k->events) {
        int rc = k->kq < 0 ? k->kq : -ENOMEM;
        if (k->kq >= 0)
            close(k->kq);
        stl__realloc(k->events, 0);
        stl__realloc(k, 0);
        return rc;
    }
    loop->bstate = k;
    loop->backend_fd = k->kq;
    return 0;
}

static void stl__kqueue_destroy(stl_loop *loop)
{
    stl__kqueue *k = STL__KQ(loop);
    close(k->kq);
    loop->backend_fd = -1;
    stl__realloc(k->changes, 0);
    stl__realloc(k->events, 0);
    stl__realloc(k, 0);
    loop->bstate = NULL;
}

/* Queues one change for the next kevent() call. */
static int stl__kqueue_change(stl__kqueue *k, int fd, short filter, unsigned short flags)
{
    if (k->nchanges == k->capchanges) {
        int cap = k->capchanges ? k->capchanges * 2 : 64;
        struct kevent *p = stl__realloc(k->changes, (size_t)cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        k->changes = p;
        k->capchanges = cap;
    }
    EV_SET(&k->changes[k->nchanges], (uintptr_t)fd, filter, flags, 0, 0, 0);
    k->nchanges++;
    return 0;
}

/* Adds the filters newly wanted (all of them for NEWFD), deletes the others. */
static int stl__kqueue_modify(stl_loop *loop, int fd)
{
    stl__kqueue *k = STL__KQ(loop);
    stl__fd *f = &loop->fds[fd];
    int want = f->want, have = (f->flags & STL__FD_NEWFD) ? 0 : f->kmask;
    int rc = 0;

    if ((want & STL_READ) && !(have & STL_READ))
        rc = stl__kqueue_change(k, fd, EVFILT_READ, EV_ADD | EV_ENABLE);
    else if (!(want & STL_READ) && (f->kmask & STL_READ))
        rc = stl__kqueue_change(k, fd, EVFILT_READ, EV_DELETE);
    if (rc == 0 && (want & STL_WRITE) && !(have & STL_WRITE))
        rc = stl__kqueue_change(k, fd, EVFILT_WRITE, EV_ADD | EV_ENABLE);
    else if (rc == 0 && !(want & STL_WRITE) && (f->kmask & STL_WRITE))
        rc = stl__kqueue_change(k, fd, EVFILT_WRITE, EV_DELETE);
    if (rc == 0)
        f->kmask = want;
    return rc;
}

/* One event: an error for a change, or readiness. */
static void stl__kqueue_event(stl_loop *loop, const struct kevent *ev)
{
    int fd = (int)ev->ident;
    if (fd < 0 || fd >= loop->nfds)
        return;
    if (ev->flags & EV_ERROR) {
        int err = (int)ev->data;
        if (err == EBADF || err == EINVAL || err == ENOTSUP || err == EPERM)
            stl__fd_kill(loop, fd);
        return;
    }
    int got = ev->filter == EVFILT_READ ? STL_READ : ev->filter == EVFILT_WRITE ? STL_WRITE : 0;
    if (ev->flags & EV_EOF)
        got |= STL_READ | STL_WRITE;
    stl__fd_event(loop, fd, got & loop->fds[fd].want);
}

/* Submits the queued changes and waits; EINTR is not an error. */
static int stl__kqueue_poll(stl_loop *loop, int64_t timeout_ns)
{
    stl__kqueue *k = STL__KQ(loop);
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / STL__NS);
        ts.tv_nsec = (long)(timeout_ns % STL__NS);
        tsp = &ts;
    }
    /* Room for one error per change, so that kevent reports them as events. */
    if (k->nevents < k->nchanges) {
        struct kevent *more = stl__realloc(k->events, (size_t)k->nchanges * sizeof *more);
        if (!more)
            return -ENOMEM;
        k->events = more;
        k->nevents = k->nchanges;
    }
    int n = kevent(k->kq, k->changes, k->nchanges, k->events, k->nevents, tsp);
    k->nchanges = 0;
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++)
        stl__kqueue_event(loop, &k->events[i]);
    return 0;
}

/* A forked child has no kqueue: make one and register every fd again. */
static int stl__kqueue_fork(stl_loop *loop)
{
    stl__kqueue *k = STL__KQ(loop);
    int kq = stl__kqueue_open();
    if (kq < 0)
        return kq;
    close(k->kq);
    k->kq = kq;
    loop->backend_fd = kq;
    k->nchanges = 0;
    stl__fd_requeue_all(loop);
    return 0;
}

const stl__backend stl__backend_kqueue = {
    "kqueue", STL_BACKEND_KQUEUE,
    stl__kqueue_init, stl__kqueue_destroy, stl__kqueue_modify, stl__kqueue_poll, stl__kqueue_fork,
};

#else
typedef int stl__no_kqueue;
#endif /* STL__HAVE_KQUEUE */
