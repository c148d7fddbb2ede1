/*
 * wakeup.c -- the loop's wake-up fd: how signal handlers and other threads
 * get a sleeping loop out of its poll.
 *
 * One per loop: an eventfd (Linux) or a non-blocking pipe, watched by an
 * internal io watcher (priority STL_MAXPRI, unreferenced, so it never keeps
 * the loop alive).  Writers (signal.c's handler, stl_async_send) set their
 * flags first and write 8 bytes second; the callback here drains the fd
 * first and reads the flags second, so a write that it drains away is
 * always matched by a flag it still sees.
 *
 * Writers may run in any thread or in a signal handler, so they bracket
 * their use of a loop with stl__wakeup_enter/leave (one process-wide
 * counter); code that is about to close the fd, or to free the loop, waits
 * with stl__wakeup_quiesce until no writer is inside.
 */
#include "loop_int.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

static int stl__wake_busy;

void stl__wakeup_enter(void)
{
    STL__ADD(&stl__wake_busy, 1);
}

void stl__wakeup_leave(void)
{
    STL__ADD(&stl__wake_busy, -1);
}

/* Waits until no signal handler or sender is using a loop's wake-up fd. */
void stl__wakeup_quiesce(void)
{
    while (STL__LOAD(&stl__wake_busy))
        sched_yield();
}

/* A forked child has only the forking thread: no writer can be inside. */
void stl__wakeup_atfork_child(void)
{
    STL__STORE(&stl__wake_busy, 0);
}

/* Async-signal-safe: one write; a full pipe or counter already wakes the loop. */
void stl__wakeup_write(stl_loop *loop)
{
    uint64_t one = 1;
    ssize_t r = write(STL__LOAD(&loop->wake_w), &one, sizeof one);
    (void)r;
}

/* Empties the fd, however many writes it holds. */
static void stl__wakeup_drain(stl_loop *loop)
{
    char buf[64];
    while (read(loop->wake_r, buf, sizeof buf) > 0)
        ;
}

/* The internal watcher: drain, then deliver signals and async sends. */
static void stl__wakeup_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w;
    (void)revents;
    stl__wakeup_drain(loop);
    stl__signals_dispatch(loop);
    stl__asyncs_dispatch(loop);
}

/* A non-blocking, close-on-exec fd pair: eventfd where there is one. */
static int stl__wakeup_fds(int *r, int *w)
{
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd >= 0) {
        *r = *w = fd;
        return 0;
    }
#endif
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    *r = p[0];
    *w = p[1];
    return 0;
}

static void stl__wakeup_close_fds(int r, int w)
{
    if (r >= 0)
        close(r);
    if (w >= 0 && w != r)
        close(w);
}

/* Makes the fd and starts the internal watcher on it. */
int stl__wakeup_open(stl_loop *loop)
{
    int r = -1, w = -1;
    int rc = stl__wakeup_fds(&r, &w);
    if (rc)
        return rc;
    stl_io_init(&loop->wake_io, stl__wakeup_cb, r, STL_READ);
    loop->wake_io.w.priority = STL_MAXPRI;
    loop->wake_io.w.flags |= STL__W_UNREF;
    rc = stl_io_start(loop, &loop->wake_io);
    if (rc) {
        stl__wakeup_close_fds(r, w);
        return rc;
    }
    loop->wake_r = r;
    STL__STORE(&loop->wake_w, w);
    return 0;
}

/* Stops the watcher, waits out writers, closes the fd. */
void stl__wakeup_close(stl_loop *loop)
{
    stl_io_stop(loop, &loop->wake_io);
    stl__wakeup_quiesce();
    stl__wakeup_close_fds(loop->wake_r, loop->wake_w);
    loop->wake_r = -1;
    loop->wake_w = -1;
}

/*
 * In a forked child: the old fd is shared with the parent, so a new one
 * replaces it (writers switch to it before the old one closes).  Anything
 * sent in between went to the old fd, so the new one is written once: the
 * next poll returns at once and the callback looks at every flag.
 */
int stl__wakeup_reopen(stl_loop *loop)
{
    int r = -1, w = -1, old_r = loop->wake_r, old_w = loop->wake_w;
    int rc = stl__wakeup_fds(&r, &w);
    if (rc)
        return rc;
    stl_io_stop(loop, &loop->wake_io);
    stl_io_set(&loop->wake_io, r, STL_READ);
    rc = stl_io_start(loop, &loop->wake_io);
    if (rc) {
        stl__wakeup_close_fds(r, w);
        stl_io_set(&loop->wake_io, old_r, STL_READ);
        stl_io_start(loop, &loop->wake_io);
        return rc;
    }
    loop->wake_r = r;
    STL__STORE(&loop->wake_w, w);
    stl__wakeup_quiesce();
    stl__wakeup_close_fds(old_r, old_w);
    stl__wakeup_write(loop);
    return 0;
}
