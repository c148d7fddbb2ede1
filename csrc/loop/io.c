/*
 * io.c -- io watchers and the per-fd table between them and the backend.
 *
 * Any number of io watchers may watch one fd; the table keeps, per fd, the
 * list of active watchers, and the backend sees only the union of their
 * masks.  Starting and stopping never talk to the kernel: they put the fd
 * on the change list, and step 3 of the iteration (stl__fd_reify) pushes
 * the merged mask of each changed fd to the backend once.  So a watcher
 * stopped and restarted within one iteration (the common "wait for one
 * read" pattern) costs no system call at all.
 *
 * "The fd may name a new file" (STL__W_NEWFD, from init and set) travels
 * with the start to the backend, which then re-registers instead of
 * trusting what it registered before under that number: see the essay at
 * the top of backend_epoll.c.
 */
#include "loop_int.h"

#include <limits.h>
#include <string.h>

#define STL__IO_EVENTS (STL_READ | STL_WRITE)

static int stl__io_check(int fd, int events)
{
    if (fd < 0)
        return -EBADF;
    if (events & ~STL__IO_EVENTS)
        return -EINVAL;
    return 0;
}

int stl_io_init(stl_io *w, stl_cb cb, int fd, int events)
{
    stl__watcher_init(&w->w, cb);
    w->fd = -1;
    w->events = 0;
    return stl_io_set(w, fd, events);
}

int stl_io_set(stl_io *w, int fd, int events)
{
    if (w->w.active)
        return -EBUSY;
    int rc = stl__io_check(fd, events);
    if (rc)
        return rc;
    w->fd = fd;
    w->events = events;
    w->w.flags |= STL__W_NEWFD;
    return 0;
}

int stl_io_modify(stl_loop *loop, stl_io *w, int events)
{
    if (events & ~STL__IO_EVENTS)
        return -EINVAL;
    if (events == w->events)
        return 0;
    w->events = events;
    if (w->w.active)
        stl__fd_change(loop, w->fd, 0);
    return 0;
}

/* Puts fd on the change list (once) and ORs in flags (STL__FD_NEWFD). */
void stl__fd_change(stl_loop *loop, int fd, int flags)
{
    stl__fd *f = &loop->fds[fd];
    f->flags |= (unsigned char)flags;
    if (f->flags & STL__FD_QUEUED)
        return;
    f->flags |= STL__FD_QUEUED;
    f->next_change = loop->changes;
    loop->changes = fd;
}

/*
 * Makes the table cover fd: it doubles (at least), so growth is rare and
 * amortised.  List heads are plain pointers, so the move is safe.
 */
static int stl__fd_grow(stl_loop *loop, int fd)
{
    long n = loop->nfds ? loop->nfds : 64;
    while (n <= fd)
        n *= 2;
    if (n > INT_MAX)
        n = (long)fd + 1;
    stl__fd *fds = stl__realloc(loop->fds, (size_t)n * sizeof *fds);
    if (!fds)
        return -ENOMEM;
    memset(fds + loop->nfds, 0, (size_t)(n - loop->nfds) * sizeof *fds);
    for (long i = loop->nfds; i < n; i++) {
        fds[i].bidx = -1;
        fds[i].next_change = -1;
    }
    loop->fds = fds;
    loop->nfds = (int)n;
    return 0;
}

int stl_io_start(stl_loop *loop, stl_io *w)
{
    if (w->w.active)
        return 0;
    int rc = stl__io_check(w->fd, w->events);
    if (rc)
        return rc;
    if (w->fd >= loop->nfds && (rc = stl__fd_grow(loop, w->fd)) != 0)
        return rc;
    stl__list_append(&loop->fds[w->fd].watchers, &w->w, STL__LINK);
    stl__activate(loop, &w->w);
    stl__fd_change(loop, w->fd, (w->w.flags & STL__W_NEWFD) ? STL__FD_NEWFD : 0);
    w->w.flags &= ~STL__W_NEWFD;
    return 0;
}

void stl_io_stop(stl_loop *loop, stl_io *w)
{
    stl_clear_pending(loop, &w->w);
    if (!w->w.active)
        return;
    stl__list_remove(&loop->fds[w->fd].watchers, &w->w, STL__LINK);
    stl__deactivate(loop, &w->w);
    stl__fd_change(loop, w->fd, 0);
}

/*
 * Step 3: for every changed fd, the union of its watchers' masks goes to
 * the backend, once.  A backend that fails for an fd (EBADF: closed;
 * ENOMEM) gets the fd killed: its watchers stop and receive STL_ERROR.
 */
void stl__fd_reify(stl_loop *loop)
{
    while (loop->changes >= 0) {
        int fd = loop->changes;
        stl__fd *f = &loop->fds[fd];
        loop->changes = f->next_change;
        f->next_change = -1;
        f->flags &= ~STL__FD_QUEUED;

        int want = 0;
        for (stl_watcher *w = f->watchers.head; w; w = w->link.next)
            want |= ((stl_io *)w)->events;
        if (want == f->want && !(f->flags & STL__FD_NEWFD))
            continue;
        f->want = want;
        int rc = loop->backend->modify(loop, fd);
        f->flags &= ~STL__FD_NEWFD;
        if (rc)
            stl__fd_kill(loop, fd);
    }
}

/* The backend saw `revents` on fd: each watcher gets its share of them. */
void stl__fd_event(stl_loop *loop, int fd, int revents)
{
    if (fd < 0 || fd >= loop->nfds)
        return;
    for (stl_watcher *w = loop->fds[fd].watchers.head; w; w = w->link.next) {
        int mine = ((stl_io *)w)->events & revents;
        if (mine)
            stl_feed_event(loop, w, mine);
    }
}

/*
 * gevent's closing_fd (libev's ev_feed_fd_event with every event): the
 * watchers on fd learn that it is going away (they are fed, not stopped;
 * their read or write will see the close), and the fd is queued as "maybe
 * a new file", so whatever the backend registered under the number is not
 * trusted again: watchers still active at the next iteration re-register
 * (and get STL_ERROR if the fd is closed by then), and a reused number is
 * registered afresh.
 */
int stl_loop_closing_fd(stl_loop *loop, int fd)
{
    if (fd < 0)
        return -EBADF;
    if (fd >= loop->nfds)
        return 0;
    int fed = 0;
    for (stl_watcher *w = loop->fds[fd].watchers.head; w; w = w->link.next) {
        if (((stl_io *)w)->events) {
            stl_feed_event(loop, w, ((stl_io *)w)->events);
            fed++;
        }
    }
    stl__fd_change(loop, fd, STL__FD_NEWFD);
    return fed;
}

/* The fd is unusable: every watcher on it stops and gets STL_ERROR with READ|WRITE. */
void stl__fd_kill(stl_loop *loop, int fd)
{
    stl_watcher *w = loop->fds[fd].watchers.head;
    while (w) {
        stl_watcher *next = w->link.next;
        stl_io_stop(loop, (stl_io *)w);
        stl_feed_event(loop, w, STL_ERROR | STL_READ | STL_WRITE);
        w = next;
    }
}

/*
 * After the backend made a fresh kernel set: nothing is registered any
 * more, so every watched fd is queued to be registered again, as new.
 */
void stl__fd_requeue_all(stl_loop *loop)
{
    for (int fd = 0; fd < loop->nfds; fd++) {
        stl__fd *f = &loop->fds[fd];
        f->kmask = 0;
        f->want = 0;
        f->bidx = -1;
        f->flags &= ~STL__FD_EPERM;
        if (f->watchers.head)
            stl__fd_change(loop, fd, STL__FD_NEWFD);
    }
}
