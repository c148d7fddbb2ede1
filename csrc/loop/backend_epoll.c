/*
 * backend_epoll.c -- Linux epoll, and how not to be fooled by it.
 *
 * The trap: epoll registers *file descriptions* (the kernel's open-file
 * objects), but its API speaks *file descriptors* (numbers).  An entry in
 * the set is keyed by the pair (number, description) and lives as long as
 * the description does, not the number:
 *
 *   - close(fd) removes the entry only if fd was the last reference to the
 *     description.  If a dup() of it exists, or a forked child still holds
 *     it, the entry stays and keeps reporting events under the old number,
 *     and EPOLL_CTL_DEL can no longer remove it: DEL looks the number up,
 *     finds a different (or no) description, and fails.
 *   - A reused number (close, then socket() returns the same fd) is a new
 *     description: EPOLL_CTL_MOD on it fails with ENOENT, while ADD
 *     succeeds and leaves the old entry in place beside the new one.
 *   - After fork() parent and child share the one set: a change by either
 *     is seen by both.
 *   - Regular files and directories cannot be registered (EPERM), though
 *     poll() says they are always ready.
 *
 * What we do:
 *   - Every registration stores fd | generation << 32 in data.u64, and the
 *     generation of the fd is bumped at each ADD or MOD.  An event whose
 *     generation is not the fd's current one comes from an entry we can no
 *     longer reach (a closed but still open elsewhere description): the loop
 *     is asked to rebuild (loop->rebuild), which closes this set, creates a
 *     fresh one and registers every watched fd again.  Rebuilds are rare and
 *     cost one system call per watched fd.
 *   - A start after init or set ("maybe a new file": STL__FD_NEWFD) always
 *     registers again (ADD, or MOD on EEXIST) instead of trusting our record.
 *   - Interest that nobody wants any more is not deleted at once (watchers
 *     stop and start all the time); the first event that nobody wants makes
 *     us narrow it with MOD, or DEL it; if that fails, rebuild.
 *   - EPERM: the fd goes on a list of always-ready fds; while it is not
 *     empty the poll does not block, and each poll reports those fds ready
 *     for what their watchers want (as poll() would).
 *   - After a fork the set is closed and recreated in the child (never
 *     edited: that would change the parent's), through the same rebuild.
 *   - EINTR from epoll_wait is not an error: the iteration just ends early.
 *   - Timeouts are milliseconds, rounded up, so we never wake before a
 *     timer is due (if epoll wakes early anyway, nothing is due yet and the
 *     loop goes round again).
 */
#include "loop_int.h"

#ifdef STL__HAVE_EPOLL

#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define STL__EPOLL_MIN_EVENTS 64
#define STL__EPOLL_MAX_EVENTS 4096

typedef struct stl__epoll {
    int epfd;
    struct epoll_event *events;
    int nevents;
    int *eperms;          /* fds epoll refused: always ready */
    int neperms, capeperms;
} stl__epoll;

#define STL__EP(loop) ((stl__epoll *)(loop)->bstate)

static int stl__epoll_init(stl_loop *loop)
{
    stl__epoll *ep = stl__realloc(NULL, sizeof *ep);
    if (!ep)
        return -ENOMEM;
    memset(ep, 0, sizeof *ep);
    ep->events = stl__realloc(NULL, STL__EPOLL_MIN_EVENTS * sizeof *ep->events);
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->epfd < 0 || !ep->events) {
        int rc = ep->epfd < 0 ? -errno : -ENOMEM;
        if (ep->epfd >= 0)
            close(ep->epfd);
        stl__realloc(ep->events, 0);
        stl__realloc(ep, 0);
        return rc;
    }
    ep->nevents = STL__EPOLL_MIN_EVENTS;
    loop->bstate = ep;
    loop->backend_fd = ep->epfd;
    return 0;
}

static void stl__epoll_destroy(stl_loop *loop)
{
    stl__epoll *ep = STL__EP(loop);
    close(ep->epfd);
    loop->backend_fd = -1;
    stl__realloc(ep->events, 0);
    stl__realloc(ep->eperms, 0);
    stl__realloc(ep, 0);
    loop->bstate = NULL;
}

static uint32_t stl__epoll_mask(int want)
{
    return (want & STL_READ ? EPOLLIN : 0) | (want & STL_WRITE ? EPOLLOUT : 0);
}

/* Adds fd to the always-ready list (or keeps it there). */
static int stl__eperm_add(stl__epoll *ep, stl__fd *f, int fd)
{
    if (f->bidx >= 0)
        return 0;
    if (ep->neperms == ep->capeperms) {
        int cap = ep->capeperms ? ep->capeperms * 2 : 16;
        int *p = stl__realloc(ep->eperms, (size_t)cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        ep->eperms = p;
        ep->capeperms = cap;
    }
    f->bidx = ep->neperms;
    ep->eperms[ep->neperms++] = fd;
    return 0;
}

/* Takes fd off the always-ready list (the last entry fills its slot). */
static void stl__eperm_remove(stl_loop *loop, stl__epoll *ep, stl__fd *f)
{
    if (f->bidx < 0)
        return;
    int last = ep->eperms[--ep->neperms];
    ep->eperms[f->bidx] = last;
    loop->fds[last].bidx = f->bidx;
    f->bidx = -1;
}

/* One epoll_ctl, with the generation bumped first; 0 or -errno. */
static int stl__epoll_ctl(stl__epoll *ep, stl__fd *f, int op, int fd, int want)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    f->gen++;
    ev.events = stl__epoll_mask(want);
    ev.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)f->gen << 32);
    return epoll_ctl(ep->epfd, op, fd, &ev) ? -errno : 0;
}

/*
 * Pushes fds[fd].want.  Without NEWFD, an unchanged mask costs nothing and
 * a smaller one is left for the poll to narrow.  Otherwise MOD when we
 * believe the fd registered, ADD when not, and the other one when the
 * kernel disagrees (ENOENT: a new description; EEXIST: still registered).
 */
static int stl__epoll_modify(stl_loop *loop, int fd)
{
    stl__epoll *ep = STL__EP(loop);
    stl__fd *f = &loop->fds[fd];
    int want = f->want, newfd = f->flags & STL__FD_NEWFD;

    if (f->flags & STL__FD_EPERM) {
        if (!newfd)
            return want ? stl__eperm_add(ep, f, fd) : (stl__eperm_remove(loop, ep, f), 0);
        stl__eperm_remove(loop, ep, f);
        f->flags &= ~STL__FD_EPERM;
        f->kmask = 0;
    }
    if (!want || (want == f->kmask && !newfd))
        return 0;
    int op = (f->kmask && !newfd) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = stl__epoll_ctl(ep, f, op, fd, want);
    if (rc == -ENOENT && op == EPOLL_CTL_MOD)
        rc = stl__epoll_ctl(ep, f, EPOLL_CTL_ADD, fd, want);
    else if (rc == -EEXIST && op == EPOLL_CTL_ADD)
        rc = stl__epoll_ctl(ep, f, EPOLL_CTL_MOD, fd, want);
    if (rc == -EPERM) {
        f->flags |= STL__FD_EPERM;
        f->kmask = 0;
        return stl__eperm_add(ep, f, fd);
    }
    if (rc == 0)
        f->kmask = want;
    return rc;
}

/*
 * One event from the kernel.  A stale generation, or interest we cannot
 * narrow, means an entry we cannot reach: rebuild at the next iteration.
 * Errors and hang-ups count as both readable and writable, so that the
 * watcher's read or write sees the error.
 */
static void stl__epoll_event(stl_loop *loop, stl__epoll *ep, struct epoll_event *ev)
{
    int fd = (int)(uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    if (fd >= loop->nfds || loop->fds[fd].gen != gen) {
        loop->rebuild = 1;
        return;
    }
    stl__fd *f = &loop->fds[fd];
    int want = f->want;
    int got = (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP) ? STL_WRITE : 0)
              | (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? STL_READ : 0);
    if (!want || (f->kmask & ~want)) {
        int rc = want ? stl__epoll_ctl(ep, f, EPOLL_CTL_MOD, fd, want)
                      : (epoll_ctl(ep->epfd, EPOLL_CTL_DEL, fd, ev) ? -errno : 0);
        if (rc) {
            loop->rebuild = 1;
            return;
        }
        f->kmask = want;
    }
    if (got & want)
        stl__fd_event(loop, fd, got & want);
}

/* Doubles the event buffer (up to the maximum); 0 if it could not grow. */
static int stl__epoll_grow(stl__epoll *ep)
{
    if (ep->nevents >= STL__EPOLL_MAX_EVENTS)
        return 0;
    struct epoll_event *more = stl__realloc(ep->events, (size_t)ep->nevents * 2 * sizeof *more);
    if (!more)
        return 0;
    ep->events = more;
    ep->nevents *= 2;
    return 1;
}

/*
 * Waits (timeout rounded up to ms), dispatches, then reports always-ready
 * fds.  A full buffer means more fds may be ready: the buffer grows and the
 * kernel is asked again without waiting, so one iteration sees them all
 * (an fd reported twice is simply fed twice into the same delivery).
 */
static int stl__epoll_poll(stl_loop *loop, int64_t timeout_ns)
{
    stl__epoll *ep = STL__EP(loop);
    int ms = -1;
    if (ep->neperms)
        ms = 0;
    else if (timeout_ns >= 0)
        ms = timeout_ns >= (int64_t)INT_MAX * 1000000 ? INT_MAX : (int)((timeout_ns + 999999) / 1000000);

    for (;;) {
        int n = epoll_wait(ep->epfd, ep->events, ep->nevents, ms);
        if (n < 0)
            return errno == EINTR ? 0 : -errno;
        for (int i = 0; i < n; i++)
            stl__epoll_event(loop, ep, &ep->events[i]);
        if (n < ep->nevents || !stl__epoll_grow(ep))
            break;
        ms = 0;
    }
    for (int i = 0; i < ep->neperms; i++) {
        int fd = ep->eperms[i];
        stl__fd_event(loop, fd, loop->fds[fd].want);
    }
    return 0;
}

/* A fresh set (after a fork, or to drop unreachable entries); every fd is re-added. */
static int stl__epoll_fork(stl_loop *loop)
{
    stl__epoll *ep = STL__EP(loop);
    int fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(ep->epfd);
    ep->epfd = fd;
    loop->backend_fd = fd;
    ep->neperms = 0;
    stl__fd_requeue_all(loop);
    return 0;
}

const stl__backend stl__backend_epoll = {
    "epoll", STL_BACKEND_EPOLL,
    stl__epoll_init, stl__epoll_destroy, stl__epoll_modify, stl__epoll_poll, stl__epoll_fork,
};

#else
typedef int stl__no_epoll;
#endif /* STL__HAVE_EPOLL */
