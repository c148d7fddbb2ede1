"""The cffi module that the loop tests drive: csrc/loop/*.c, the scenarios in
tests/c/loop_*.c, and the C API (stl_loop.h) itself, built with c_build.

csrc/loop is compiled with its allocator pointed at the counting one of
loop_harness.c (STL_LOOP_REALLOC / STL_LOOP_FREE), so that scenarios can
count and fail allocations.  Callbacks are C (tl_record) or Python through
one extern "Python" trampoline, tl_py_cb, which calls the Python callable
whose handle is in the watcher's data field.

STL_LOOP_DIR=/path/to/a/copy/of/csrc/loop runs the tests against another
copy of the library.
"""
import os
from pathlib import Path

from c_build import build_module

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOOP = Path(os.environ.get("STL_LOOP_DIR") or ROOT / "csrc" / "loop").resolve()
NAME = "_stl_loop_tests"

SOURCES = sorted(LOOP.glob("*.c")) + [HERE / "loop_harness.c"] + sorted(HERE.glob("loop_scen_*.c"))
HEADERS = sorted(LOOP.glob("*.h")) + [HERE / "loop_tests.h"]

CDEF = """
typedef int... pid_t;
typedef struct tl_result { int code; long value; char what[240]; } tl_result;
int tl_count(void);
const char *tl_name(int i);
int tl_run_isolated(int i, unsigned backend, unsigned timeout_s, tl_result *r);
typedef struct tl_rec { long tag; int revents; uint64_t iteration; } tl_rec;
extern tl_rec tl_log[];
extern int tl_nlog;
void tl_log_reset(void);

typedef struct stl_loop stl_loop;
typedef struct stl_watcher stl_watcher;
typedef void (*stl_cb)(stl_loop *loop, stl_watcher *w, int revents);
struct stl_watcher {
    stl_cb cb; void *data; unsigned char active; unsigned char pending;
    signed char priority; ...;
};
typedef struct stl_io { stl_watcher w; int fd; int events; ...; } stl_io;
typedef struct stl_timer { stl_watcher w; ...; } stl_timer;
typedef struct stl_signal { stl_watcher w; int signum; ...; } stl_signal;
typedef struct stl_child { stl_watcher w; pid_t pid; int trace; pid_t rpid; int rstatus; ...; } stl_child;
typedef struct stl_idle { stl_watcher w; ...; } stl_idle;
typedef struct stl_prepare { stl_watcher w; ...; } stl_prepare;
typedef struct stl_check { stl_watcher w; ...; } stl_check;
typedef struct stl_fork { stl_watcher w; ...; } stl_fork;
typedef struct stl_async { stl_watcher w; ...; } stl_async;

#define STL_READ ...
#define STL_WRITE ...
#define STL_TIMER ...
#define STL_SIGNAL ...
#define STL_CHILD ...
#define STL_CUSTOM ...
#define STL_IDLE ...
#define STL_PREPARE ...
#define STL_CHECK ...
#define STL_FORK ...
#define STL_ASYNC ...
#define STL_ERROR ...
#define STL_MINPRI ...
#define STL_MAXPRI ...
#define STL_BACKEND_EPOLL ...
#define STL_BACKEND_POLL ...
#define STL_BACKEND_KQUEUE ...
#define STL_LOOP_PIDCHECK ...
#define STL_RUN_DEFAULT ...
#define STL_RUN_ONCE ...
#define STL_RUN_NOWAIT ...
#define STL_BREAK_CANCEL ...
#define STL_BREAK_ONE ...
#define STL_BREAK_ALL ...

int stl_loop_new(stl_loop **out, unsigned flags);
int stl_loop_free(stl_loop *loop);
int stl_loop_run(stl_loop *loop, int mode);
void stl_loop_break(stl_loop *loop, int how);
double stl_loop_now(const stl_loop *loop);
int64_t stl_loop_now_ns(const stl_loop *loop);
void stl_loop_update_now(stl_loop *loop);
uint64_t stl_loop_iteration(const stl_loop *loop);
int stl_loop_depth(const stl_loop *loop);
long stl_loop_refcount(const stl_loop *loop);
long stl_loop_pending_count(const stl_loop *loop);
unsigned stl_loop_backend(const stl_loop *loop);
const char *stl_loop_backend_name(const stl_loop *loop);
unsigned stl_loop_supported_backends(void);
void stl_loop_fork(stl_loop *loop);
void stl_loop_invoke_pending(stl_loop *loop);
void stl_loop_set_data(stl_loop *loop, void *data);
void *stl_loop_get_data(const stl_loop *loop);

void stl_feed_event(stl_loop *loop, stl_watcher *w, int revents);
int stl_clear_pending(stl_loop *loop, stl_watcher *w);
int stl_set_priority(stl_watcher *w, int priority);
void stl_ref(stl_loop *loop, stl_watcher *w);
void stl_unref(stl_loop *loop, stl_watcher *w);
int stl_is_ref(const stl_watcher *w);

int stl_io_init(stl_io *w, stl_cb cb, int fd, int events);
int stl_io_set(stl_io *w, int fd, int events);
int stl_io_modify(stl_loop *loop, stl_io *w, int events);
int stl_io_start(stl_loop *loop, stl_io *w);
void stl_io_stop(stl_loop *loop, stl_io *w);
int stl_timer_init(stl_timer *w, stl_cb cb, double after, double repeat);
int stl_timer_set(stl_timer *w, double after, double repeat);
int stl_timer_set_repeat(stl_timer *w, double repeat);
double stl_timer_repeat(const stl_timer *w);
int stl_timer_start(stl_loop *loop, stl_timer *w);
void stl_timer_stop(stl_loop *loop, stl_timer *w);
int stl_timer_again(stl_loop *loop, stl_timer *w);
double stl_timer_remaining(const stl_loop *loop, const stl_timer *w);
int stl_signal_init(stl_signal *w, stl_cb cb, int signum);
int stl_signal_start(stl_loop *loop, stl_signal *w);
void stl_signal_stop(stl_loop *loop, stl_signal *w);
int stl_child_init(stl_child *w, stl_cb cb, pid_t pid, int trace);
int stl_child_start(stl_loop *loop, stl_child *w);
void stl_child_stop(stl_loop *loop, stl_child *w);
void stl_idle_init(stl_idle *w, stl_cb cb);
int stl_idle_start(stl_loop *loop, stl_idle *w);
void stl_idle_stop(stl_loop *loop, stl_idle *w);
void stl_prepare_init(stl_prepare *w, stl_cb cb);
int stl_prepare_start(stl_loop *loop, stl_prepare *w);
void stl_prepare_stop(stl_loop *loop, stl_prepare *w);
void stl_check_init(stl_check *w, stl_cb cb);
int stl_check_start(stl_loop *loop, stl_check *w);
void stl_check_stop(stl_loop *loop, stl_check *w);
void stl_fork_init(stl_fork *w, stl_cb cb);
int stl_fork_start(stl_loop *loop, stl_fork *w);
void stl_fork_stop(stl_loop *loop, stl_fork *w);
void stl_async_init(stl_async *w, stl_cb cb);
int stl_async_start(stl_loop *loop, stl_async *w);
void stl_async_stop(stl_loop *loop, stl_async *w);
void stl_async_send(stl_loop *loop, stl_async *w);
int stl_async_pending(const stl_async *w);

void tl_record(stl_loop *loop, stl_watcher *w, int revents);
extern "Python" void tl_py_cb(stl_loop *loop, stl_watcher *w, int revents);
"""

PREAMBLE = '#include "loop_tests.h"\n'

CFLAGS = [
    "-std=gnu11", "-O2", "-g", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter",
    "-I", LOOP, "-I", HERE,
    "-DSTL_LOOP_REALLOC=tl_realloc", "-DSTL_LOOP_FREE=tl_free", "-include", HERE / "loop_tests.h",
]
LDFLAGS = ["-pthread", "-lm"]

#: Errors raised by Python callbacks (the trampoline cannot raise into C).
CALLBACK_ERRORS = []


def load():
    """The built module, with the Python trampoline registered."""
    module = build_module(NAME, CDEF, PREAMBLE, SOURCES, HEADERS, CFLAGS, LDFLAGS)
    if not getattr(module, "_trampoline", None):
        ffi = module.ffi

        @ffi.def_extern()
        def tl_py_cb(loop, w, revents):
            try:
                ffi.from_handle(w.data)(loop, w, revents)
            except BaseException as e:  # reported by the test that set it up
                CALLBACK_ERRORS.append(e)

        module._trampoline = tl_py_cb
    return module
