/*
 * backend_poll.c -- poll(2): portable, stateless in the kernel, O(fds) per
 * call.  The pollfd array holds one slot per fd that something wants;
 * fds[fd].bidx is the slot, and removal moves the last slot into the hole.
 *
 * poll has none of epoll's traps: the kernel keeps nothing between calls,
 * so a closed and reused fd number simply means the new file, a fork needs
 * no rebuild, and regular files report ready as they should.  A closed fd
 * comes back as POLLNVAL: its watchers are stopped and get STL_ERROR.
 */
#include "loop_int.h"

#include <limits.h>
#include <poll.h>
#include <string.h>

typedef struct stl__poll {
    struct pollfd *pfds;
    int n, cap;
} stl__poll;

#define STL__PL(loop) ((stl__poll *)(loop)->bstate)

static int stl__poll_init(stl_loop *loop)
{
    stl__poll *pl = stl__realloc(NULL, sizeof *pl);
    if (!pl)
        return -ENOMEM;
    memset(pl, 0, sizeof *pl);
    pl->cap = 64;
    pl->pfds = stl__realloc(NULL, (size_t)pl->cap * sizeof *pl->pfds);
    if (!pl->pfds) {
        stl__realloc(pl, 0);
        return -ENOMEM;
    }
    loop->bstate = pl;
    return 0;
}

static void stl__poll_destroy(stl_loop *loop)
{
    stl__poll *pl = STL__PL(loop);
    stl__realloc(pl->pfds, 0);
    stl__realloc(pl, 0);
    loop->bstate = NULL;
}

/* Gives fd a slot, updates its events, or frees its slot when nothing is wanted. */
static int stl__poll_modify(stl_loop *loop, int fd)
{
    stl__poll *pl = STL__PL(loop);
    stl__fd *f = &loop->fds[fd];
    int want = f->want;

    if (!want) {
        if (f->bidx >= 0) {
            struct pollfd last = pl->pfds[--pl->n];
            pl->pfds[f->bidx] = last;
            loop->fds[last.fd].bidx = f->bidx;
            f->bidx = -1;
        }
        f->kmask = 0;
        return 0;
    }
    if (f->bidx < 0) {
        if (pl->n == pl->cap) {
            int cap = pl->cap * 2;
            struct pollfd *p = stl__realloc(pl->pfds, (size_t)cap * sizeof *p);
            if (!p)
                return -ENOMEM;
            pl->pfds = p;
            pl->cap = cap;
        }
        f->bidx = pl->n++;
        pl->pfds[f->bidx].fd = fd;
    }
    pl->pfds[f->bidx].events = (short)((want & STL_READ ? POLLIN : 0) | (want & STL_WRITE ? POLLOUT : 0));
    pl->pfds[f->bidx].revents = 0;
    f->kmask = want;
    return 0;
}

/* Waits (timeout rounded up to ms) and dispatches; EINTR is not an error. */
static int stl__poll_poll(stl_loop *loop, int64_t timeout_ns)
{
    stl__poll *pl = STL__PL(loop);
    int ms = -1;
    if (timeout_ns >= 0)
        ms = timeout_ns >= (int64_t)INT_MAX * 1000000 ? INT_MAX : (int)((timeout_ns + 999999) / 1000000);

    int n = poll(pl->pfds, (nfds_t)pl->n, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    /* Slots do not move while we dispatch: stopping a watcher (fd_kill)
     * only queues a change, applied at the next reify. */
    for (int i = 0; i < pl->n && n > 0; i++) {
        struct pollfd *p = &pl->pfds[i];
        if (!p->revents)
            continue;
        n--;
        if (p->revents & POLLNVAL) {
            stl__fd_kill(loop, p->fd);
            continue;
        }
        int got = (p->revents & (POLLOUT | POLLERR | POLLHUP) ? STL_WRITE : 0)
                  | (p->revents & (POLLIN | POLLERR | POLLHUP) ? STL_READ : 0);
        stl__fd_event(loop, p->fd, got);
    }
    return 0;
}

/* poll keeps no kernel state: nothing to rebuild after a fork. */
static int stl__poll_fork(stl_loop *loop)
{
    (void)loop;
    return 0;
}

const stl__backend stl__backend_poll = {
    "poll", STL_BACKEND_POLL,
    stl__poll_init, stl__poll_destroy, stl__poll_modify, stl__poll_poll, stl__poll_fork,
};
